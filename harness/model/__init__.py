"""The queue's model (for the state machine) and the history checker of concurrent calls."""
