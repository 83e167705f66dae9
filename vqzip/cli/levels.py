"""`vqzip levels`: the quality levels as a table."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from vqzip.cli.app import Command, app, reported


@app.command(cls=Command)
def levels():
    """List the quality levels: each a shipped model's operating point, the scale images are coded
    at, the maps coded after the first level's (all, or fewer), the RDO multiplier, and the
    fine-skip threshold."""
    from vqzip import zoo

    with reported():
        default = zoo.level(None).quality
        table = Table("quality", "model", "scale", "maps after first", "RDO lambda", "skip", "", title="vqzip quality levels",
                      caption="lambda 0: nearest codes; skip: the fine map is coded only in the blocks where it saves more "
                              "squared error per bit than this (none: everywhere)")
        for lv in zoo.levels():
            table.add_row(str(lv.quality), lv.model, str(lv.scale), "all" if lv.stages is None else str(lv.stages),
                          f"{lv.lam:g}", f"{lv.skip:g}" if lv.skip else "none", "default" if lv.quality == default else "")
        Console(highlight=False).print(table)
