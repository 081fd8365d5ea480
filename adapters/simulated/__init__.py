"""What every vendor simulator shares, apart from the adapters that speak to real vendors.

    world.py           the simulated garages: levels, cars coming and going, gate counters
    back_office.py     a PARCS back office over that world: reservations, sessions, payments,
                       permits, validations, the ledger (one per world, `office_of`)
    harness.py         the harness each simulator's ASGI app runs in: fault injection, request
                       counting and recording (`simulator_app`, `SimulatorControl`, `Simulator`)
    webhook_sender.py  how a simulated vendor delivers its webhooks

Each dialect's own simulator (`adapters/<dialect>/simulator/`) renders this in its wire dialect.
Adapters never import it; in the gateway only the sandbox does (gateway/sandbox.py,
gateway/sandbox_events.py).
"""
