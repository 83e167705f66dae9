"""`vqzip levels`: the quality levels as a table."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from vqzip.cli.app import Command, app, reported


@app.command(cls=Command)
def levels():
    """List the quality levels: each a shipped model's operating point, the scale images are coded
    at, the code maps coded (all, or the first few), the RDO multiplier, and the fine-skip
    threshold."""
    from vqzip import zoo

    with reported():
        default = zoo.level(None).quality
        table = Table("quality", "model", "scale", "maps", "RDO lambda", "skip", "", title="vqzip quality levels",
                      caption="lambda 0: nearest codes; skip: the fine map is coded only in the blocks where it saves more "
                              "squared error per bit than this (none: everywhere)")
        for lv in zoo.levels():
            p = lv.point
            table.add_row(str(lv.quality), p.model, str(p.scale), "all" if p.maps is None else str(p.maps),
                          f"{p.lam:g}", f"{p.skip:g}" if p.skip else "none", "default" if lv.quality == default else "")
        Console(highlight=False).print(table)
