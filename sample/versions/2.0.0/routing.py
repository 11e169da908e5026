"""Routing for order-router 2.0.0 (the Knight release).

The power peg code is gone. Its old order flag ``rlp`` is REUSED for the new retail liquidity feature: harmless
here (one child order per parent), fatal on any host still running 1.0.0, where ``rlp`` means power peg.
"""


def retail_liquidity(order, client):
    client.send_child(order["id"], order["symbol"], order["qty"])


def route(order, router, client):
    if "rlp" in order.get("flags", []) and router.enabled("rlp"):
        retail_liquidity(order, client)
    else:
        client.send_child(order["id"], order["symbol"], order["qty"])
