"""Make the example packages whole: seeded labelled data (data/train.csv, data/test.csv), the
trained artifact (model.skops), from each package's model.yaml lineage, and the labelled rows
of the last three days at the package's data_location (examples/daily/<model>/<date>/), and
fresh rows from a changed world for the retraining walk-through (examples/new-data/).
`--drift` and/or `--unfair` change yesterday's credit-risk rows so the monitor alerts:

    python examples/generate.py --drift --unfair examples/credit-risk

    python examples/generate.py examples/credit-risk examples/house-prices

An existing artifact is kept (skops files carry timestamps, so a new one would be a new version).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio

from mlc_tasks.packages import ModelType, TrainingSpec, parse_model_yaml
from mlc_tasks.training import fit

ROWS = {"train": 4000, "test": 1000}
DAILY_ROWS = 800
BREACHES: frozenset[str] = frozenset()  # --drift, --unfair


def credit_risk(rng: np.random.Generator, n: int, shifted: bool = False) -> pd.DataFrame:
    age = rng.integers(21, 70, n)
    income = rng.lognormal(10.6, 0.45, n).round(2)
    debt_ratio = rng.beta(2, 4, n).round(3)
    employment = np.minimum(rng.poisson(6, n), age - 18)
    region = rng.choice(["north", "south", "east", "west"], n)
    gender = rng.choice(["female", "male"], n)
    logit = -1.2 + 4.0 * debt_ratio - 0.9 * np.log(income / 40000) - 0.05 * employment
    if shifted:  # the world changed: lending in the east now defaults far more often
        logit = logit + 2.0 * (region == "east") - 0.8 * (region == "west")
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income, "debt_ratio": debt_ratio, "age": age,
                         "employment_years": employment, "region": region, "gender": gender,
                         "default": default})


def house_prices(rng: np.random.Generator, n: int) -> pd.DataFrame:
    area = rng.normal(95, 30, n).clip(25, 300).round(1)
    rooms = np.maximum(1, (area / 28 + rng.normal(0, 0.7, n)).round()).astype(int)
    age = rng.integers(0, 120, n)
    city = rng.choice(["paris", "lyon", "lille", "nantes"], n)
    per_m2 = pd.Series(city).map({"paris": 10500, "lyon": 5200, "lille": 3600,
                                  "nantes": 4100}).to_numpy()
    price = (area * per_m2 * (1 - age / 600) + rooms * 4000 + rng.normal(0, 15000, n)).round(0)
    return pd.DataFrame({"area_m2": area, "rooms": rooms, "age_years": age, "city": city,
                         "price": price})


GENERATORS = {"credit-risk": credit_risk, "house-prices": house_prices}
NEW_ROWS = 6000


def new_data(folder: Path) -> Path:
    """Fresh labelled credit-risk rows from a changed world, for the retraining walk-through:
    copied into the data location, they start a retraining whose challenger wins."""
    target = folder.parent / "new-data" / "credit-risk.csv"
    target.parent.mkdir(exist_ok=True)
    credit_risk(np.random.default_rng(2026), NEW_ROWS, shifted=True).to_csv(target, index=False)
    return target


def generate(folder: Path) -> None:
    spec = parse_model_yaml(folder / "model.yaml")
    lineage = spec.lineage
    if lineage.seed is None or lineage.estimator is None:
        raise SystemExit(f"{folder}/model.yaml: lineage needs estimator and seed")
    rng = np.random.default_rng(lineage.seed)
    data = folder / "data"
    data.mkdir(exist_ok=True)
    frames = {part: GENERATORS[spec.name](rng, n) for part, n in ROWS.items()}
    for part, frame in frames.items():
        frame.to_csv(data / f"{part}.csv", index=False)
    daily_batches(folder, spec.name, spec.data_location, breaches=BREACHES)
    if spec.name == "credit-risk":
        new_data(folder)
    artifact = folder / str(spec.artifact)
    if artifact.exists():
        print(f"{folder}: data written; keeping {artifact.name}")
        return
    training = TrainingSpec(estimator=lineage.estimator, params=lineage.parameters,
                            data="data/train.csv", seed=lineage.seed)
    model = fit(ModelType(spec.type), training, spec.input_schema, frames["train"], spec.label)
    sio.dump(model, artifact)
    print(f"{folder}: data and {artifact.name} written")


def daily_batches(folder: Path, name: str, location: str | None, days: int = 3,
                  breaches: frozenset[str] = frozenset()) -> None:
    """The labelled rows of the last few days (UTC), one folder per day at the package's
    data_location, each seeded by its date so every run writes the same rows. `breaches`
    ("drift", "unfair") changes yesterday's rows so the monitor has something to find."""
    if not location:
        return
    for back in range(1, days + 1):
        day = datetime.now(UTC).date() - timedelta(days=back)
        target = (folder / location / day.isoformat()).resolve()
        target.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
        rows = GENERATORS[name](rng, DAILY_ROWS)
        if back == 1 and name == "credit-risk":
            rows = with_breaches(rows, breaches, rng)
        rows.to_csv(target / "labelled.csv", index=False)


def with_breaches(rows: pd.DataFrame, breaches: frozenset[str],
                  rng: np.random.Generator) -> pd.DataFrame:
    """drift: incomes up by half and most applicants from the north; unfair: women's debt
    ratios pushed up after their outcomes were drawn, so the model refuses them more often."""
    rows = rows.copy()
    if "drift" in breaches:
        rows["income"] = (rows["income"] * 1.5).round(2)
        rows["region"] = rng.choice(["north", "south", "east", "west"], len(rows),
                                    p=[0.7, 0.1, 0.1, 0.1])
    if "unfair" in breaches:
        women = rows["gender"] == "female"
        rows.loc[women, "debt_ratio"] = (rows.loc[women, "debt_ratio"] + 0.3).clip(0, 1)
    return rows


if __name__ == "__main__":
    BREACHES = frozenset(a.removeprefix("--") for a in sys.argv[1:] if a.startswith("--"))
    folders = [a for a in sys.argv[1:] if not a.startswith("--")]
    for name in folders or [str(p.parent) for p in Path(__file__).parent.glob("*/model.yaml")]:
        generate(Path(name))
