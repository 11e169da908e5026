"""Routing for order-router 2.1.0: retail liquidity done right.

The feature gets a NEW order flag, ``rli``. The old flag ``rlp`` is retired (flags.json says so) and ignored:
an order still carrying it is routed as a plain order, one child order.
"""


def retail_liquidity(order, client):
    client.send_child(order["id"], order["symbol"], order["qty"])


def route(order, router, client):
    if "rli" in order.get("flags", []) and router.enabled("rli"):
        retail_liquidity(order, client)
    else:
        client.send_child(order["id"], order["symbol"], order["qty"])
