"""A deterministic sample of shop events: the same seed gives the same messages every run."""

from __future__ import annotations

import random
from typing import Any

from traitsync.spec.timestamps import format_iso_ms

CATEGORIES = ["Shoes", "Shirts", "Hats", "Bags", "Socks"]


def shop_events(now_ms: int, users: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Anonymous browsing, sign-ups with email, orders in USD and EUR over the last 200 days."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    day = 86_400_000
    for n in range(users):
        user_id = f"user_{n:03d}"
        anon = f"anon-{n:03d}"
        email = f"{user_id}@example.com"
        joined = now_ms - rng.randint(30, 200) * day
        out.append({"type": "page", "anonymousId": anon, "name": "Home", "messageId": f"demo-{n}-page",
                    "timestamp": format_iso_ms(joined - 3_600_000), "properties": {"path": "/"}})
        out.append({"type": "identify", "userId": user_id, "anonymousId": anon, "messageId": f"demo-{n}-id",
                    "timestamp": format_iso_ms(joined), "traits": {"email": email, "name": f"User {n}",
                                                                   "plan": rng.choice(["free", "pro"])}})
        for k in range(rng.randint(0, 6)):
            when = now_ms - rng.randint(0, 180) * day - rng.randint(0, day)
            category = rng.choice(CATEGORIES)
            out.append({"type": "track", "userId": user_id, "event": "Product Viewed",
                        "messageId": f"demo-{n}-view-{k}", "timestamp": format_iso_ms(when),
                        "properties": {"category": category}})
            if rng.random() < 0.6:
                out.append({"type": "track", "userId": user_id, "event": "Order Completed",
                            "messageId": f"demo-{n}-order-{k}", "timestamp": format_iso_ms(when + 600_000),
                            "properties": {"revenue": round(rng.uniform(10, 300), 2),
                                           "currency": rng.choice(["USD", "USD", "EUR"]),
                                           "category": category}})
    return out


def live_views(now_ms: int, users: int = 8, seed: int = 11) -> list[dict[str, Any]]:
    """"Product Viewed" right now by the first ``users`` users: they enter the 10-second audience
    and, with no further views, leave it ten seconds later while the demo watches."""
    rng = random.Random(seed)
    return [{"type": "track", "userId": f"user_{n:03d}", "event": "Product Viewed",
             "messageId": f"demo-{n}-live-view", "timestamp": format_iso_ms(now_ms - n * 50),
             "properties": {"category": rng.choice(CATEGORIES)}} for n in range(users)]
