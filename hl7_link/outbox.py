"""Placeholder replaced by the outbound work: the order-event consumer of the HL7 link."""


def outbox_events_consumer(events) -> None:
    return None
