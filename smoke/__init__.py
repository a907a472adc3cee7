"""The prod smoke suite (`python -m smoke`). Empty until its issue lands; see SPEC §4."""
