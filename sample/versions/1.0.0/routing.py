"""Routing for order-router 1.0.0 (the baseline).

Still carries the legacy "power peg" code: an order flagged ``rlp`` is worked by sending child orders until the
parent is filled. The cumulative fill check it relied on was moved elsewhere long ago, so nothing ever tells it to
stop -- the exact dormant code that Knight Capital's reused flag woke up on 1 August 2012.
"""

# Not part of the historical code: a bound so a test run cannot hurt the machine it runs on.
POWER_PEG_SAFETY_LIMIT = 2000


def power_peg(order, client):
    filled = 0  # the fill tracking that used to update this was removed; it stays 0 forever
    while filled < order["qty"] and client.sent < POWER_PEG_SAFETY_LIMIT:
        client.send_child(order["id"], order["symbol"], order["qty"])


def route(order, router, client):
    if "rlp" in order.get("flags", []) and router.enabled("rlp"):
        power_peg(order, client)
    else:
        client.send_child(order["id"], order["symbol"], order["qty"])
