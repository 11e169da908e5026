"""Routing for order-router 2.3.0: 2.2.0's routing on a new data format.

On start it migrates the service's state file (``data/book.json``) to format 2, which every earlier release
refuses to start with: a release whose rollback cannot work, the way a schema migration without a way back breaks
real services. lockstep's rollback rehearsal on the canary refuses it before any other host changes.
"""

DATA_FORMAT = 2


def retail_liquidity(order, client):
    client.send_child(order["id"], order["symbol"], order["qty"])


def route(order, router, client):
    if "rli" in order.get("flags", []) and router.enabled("rli"):
        retail_liquidity(order, client)
    else:
        client.send_child(order["id"], order["symbol"], order["qty"])
