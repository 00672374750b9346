"""Webhooks: endpoints, the signature, and the dispatcher that delivers the outbox."""
