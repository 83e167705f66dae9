"""`vqzip models`: the installed models, and the folder each is found in."""
from __future__ import annotations

import json
from pathlib import Path

from vqzip.cli.app import MODELS, Command, app, reported
from vqzip.cli.levels import JSON


@app.command(cls=Command)
def models(as_json: bool = JSON, model_dirs: list[str] = MODELS):
    """List the installed models: each one's name, where it is found (a folder given by --models
    or $VQZIP_CHECKPOINTS, the user's folder where `vqzip train export` writes, or the shipped
    models), its folder and the quality levels that use it. A name found in several folders is
    the first's."""
    from vqzip import manifest

    with reported():
        given = [p.resolve() for p in manifest.given_dirs()]
        user, shipped = manifest.user_dir().resolve(), manifest.checkpoints_dir().resolve()
        levels = manifest.levels()
        rows = []
        for name, entry in sorted(manifest.manifest()["models"].items()):
            root = Path(entry["folder"]).resolve().parent
            where = "given" if root in given else "user" if root == user else "shipped" if root == shipped else "?"
            rows.append({"name": name, "where": where, "folder": entry["folder"], "sha256": entry["sha256"],
                         "levels": [lv.quality for lv in levels if lv.point.model == name]})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        used = f"levels {','.join(map(str, r['levels']))}" if r["levels"] else "no level (-m NAME)"
        print(f"{r['name']}\t{r['where']}\t{r['folder']}\t{used}")
