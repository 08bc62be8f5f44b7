"""'Your turn is near' notices (W5-W7): registration, encrypted contacts, senders, texts."""
