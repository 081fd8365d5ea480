"""The event path: vendor happenings in (webhooks, polling), onto the bus, out to subscribers and partners."""
