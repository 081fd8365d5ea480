"""The event path: vendor happenings in (webhooks, polling), onto the bus, out to subscribers and partners.

`path.py` is the one object the app builds from these parts: start reading there.
"""
