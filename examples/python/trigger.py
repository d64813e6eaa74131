"""Trigger a research, follow its events until it ends, print the outcome.

    python3 trigger.py "momentum on BTC 1h" [SYMBOL]
"""

import sys

from researchcoord import Client

brief = sys.argv[1] if len(sys.argv) > 1 else "momentum on BTC 1h"
symbol = sys.argv[2] if len(sys.argv) > 2 else "BTCUSD"

with Client() as c:
    out = c.trigger(brief=brief, options={"symbol": symbol, "epochs": 4}, timeout=30)
    if not out.accepted:
        sys.exit("rejected: %s %s %s" % (out.reason, out.message or "", out.figures))
    print("research", out.research_id)
    for ev in c.events(research_id=out.research_id, follow=True, timeout=300):
        print(" ", ev["type"], ev.get("phase") or ev.get("reason") or "")
        if ev["type"] in ("completed", "failed", "cancelled"):
            break
    r = c.research(out.research_id)
    print(r["status"], r.get("verdict") or r.get("error") or "")
