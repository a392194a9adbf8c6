"""Webhook-driven sync: the receiver, its durable inbox, and the CLI around them."""
