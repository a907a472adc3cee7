"""The reference services as real processes: the stack, `up`, the demo, log tails, ASGI."""
