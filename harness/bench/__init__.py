"""The claim benchmark's parts: a durable server, our drains, the peers', growth, the report."""
