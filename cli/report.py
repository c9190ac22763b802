"""``fractaldb report DATASET``: counts, coverage, degenerate variants, near-empty images,
near-duplicate classes and separability of a generated dataset (fractaldb.report)."""

from __future__ import annotations

import click

from fractaldb.console import progress_bar


@click.command()
@click.argument("dataset")
@click.option("--out", required=True, type=click.Path(),
              help="Folder for report.md, report.json and the PNGs (new or empty, unless --overwrite).")
@click.option("--max-images", type=int, default=20000, show_default=True,
              help="Read shards in order until this many images (a sample of a large dataset).")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty --out.")
def report(dataset, out, max_images, overwrite):
    """A one-page look at a 'fractaldb generate' output before anyone trains on it."""
    from fractaldb.report import dataset_report

    with progress_bar(unit="img", desc="report") as bar:
        r = dataset_report(dataset, out, max_images=max_images, progress=bar.update, overwrite=overwrite)
    sep = r["separability"]
    top1 = "n/a" if sep["top1"] is None else f"{sep['top1']:.1f} % (chance {sep['chance']:.1f} %)"
    click.echo(f"{r['read']['images']} images of {r['read']['classes']} classes; coverage mean "
               f"{r['coverage']['mean']:.3f}; near-empty {r['near_empty']['count']}; degenerate variants "
               f"{r['degenerate_variants']['count']}; near-duplicate class pairs "
               f"{len(r['near_duplicate_classes']['pairs'])}; nearest-centroid top-1 {top1} -> {out}/report.md")
