"""Small PhysioNet 2019 .psv files for tests: the real header and rows built from a few vitals."""

import numpy as np

# The real header of every set-A file, in the real column order.
HEADER = (
    "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|BaseExcess|HCO3|FiO2|pH|PaCO2|SaO2|AST|BUN|Alkalinephos|Calcium|"
    "Chloride|Creatinine|Bilirubin_direct|Glucose|Lactate|Magnesium|Phosphate|Potassium|Bilirubin_total|TroponinI|"
    "Hct|Hgb|PTT|WBC|Fibrinogen|Platelets|Age|Gender|Unit1|Unit2|HospAdmTime|ICULOS|SepsisLabel"
).split("|")


def vitals(hr=80, o2=97, temp=37.0, sbp=120, map_=80, dbp=60, resp=18) -> dict:
    return {"HR": hr, "O2Sat": o2, "Temp": temp, "SBP": sbp, "MAP": map_, "DBP": dbp, "Resp": resp}


def psv_text(rows: list[dict], age=60.5, gender=1, header=HEADER) -> str:
    """A .psv file: every column NaN unless given; Age/Gender/HospAdmTime repeated on each row."""
    lines = ["|".join(header)]
    for row in rows:
        full = {"Age": age, "Gender": gender, "HospAdmTime": -0.03, "SepsisLabel": 0, **row}
        lines.append("|".join("NaN" if full.get(c) is None else str(full[c]) for c in header))
    return "\n".join(lines) + "\n"


def write_cohort(root, n=40, hours=30, seed=0):
    """n stays; a third become septic, with a higher heart rate from hour 10 (a learnable signal)."""
    rng = np.random.default_rng(seed)
    root.mkdir()
    for i in range(n):
        septic = i % 3 == 0
        rows = []
        for h in range(1, hours + 1):
            hr = 80 + rng.normal(0, 5) + (25 if septic and h > 10 else 0)
            rows.append({**vitals(hr=round(hr, 1), resp=18 + int(rng.integers(-2, 3))), "ICULOS": h, "SepsisLabel": int(septic and h > 12)})
        (root / f"p{i:06d}.psv").write_text(psv_text(rows, age=40 + i))
    return root
