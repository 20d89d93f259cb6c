"""The synthetic users: demographics, device, location, latent taste and planted segment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attune.synth.segments import BEHAVIOURS, DEVICES, DRAMA_FANS, MOBILE_BROWSERS, SEGMENT_SHARES, SEGMENTS
from attune.synth.vocabulary import CATEGORIES

GENDERS: tuple[str, ...] = ("female", "male", "non_binary")
GENDER_SHARES: tuple[float, ...] = (0.49, 0.48, 0.03)

#: (country, city, UTC offset in hours in November, weight). The offset makes activity follow
#: the local clock: evenings in Berlin and in Chicago are different UTC hours.
CITIES: tuple[tuple[str, str, int, float], ...] = (
    ("DE", "Berlin", 1, 0.09), ("DE", "Munich", 1, 0.06), ("DE", "Hamburg", 1, 0.05),
    ("DE", "Cologne", 1, 0.02),
    ("US", "New York", -5, 0.07), ("US", "Chicago", -6, 0.05), ("US", "Austin", -6, 0.03),
    ("US", "San Francisco", -8, 0.05),
    ("GB", "London", 0, 0.09), ("GB", "Manchester", 0, 0.03), ("GB", "Edinburgh", 0, 0.02),
    ("FR", "Paris", 1, 0.08), ("FR", "Lyon", 1, 0.03), ("FR", "Marseille", 1, 0.02),
    ("ES", "Madrid", 1, 0.05), ("ES", "Barcelona", 1, 0.04),
    ("IT", "Rome", 1, 0.04), ("IT", "Milan", 1, 0.04),
    ("NL", "Amsterdam", 1, 0.05), ("NL", "Rotterdam", 1, 0.02),
    ("BR", "São Paulo", -3, 0.06), ("BR", "Rio de Janeiro", -3, 0.03),
)  # fmt: skip

#: (device index, user agent, os, browser): os and browser are what Attune's enricher parses
#: from the user agent, so sent and derived device fields agree.
USER_AGENTS: tuple[tuple[int, str, str, str], ...] = (
    (
        0,
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.5 Mobile/15E148 Safari/604.1"
        ),
        "iOS",
        "Mobile Safari",
    ),
    (
        0,
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36"
        ),
        "Android",
        "Chrome Mobile",
    ),
    (
        0,
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36"
        ),
        "Android",
        "Chrome Mobile",
    ),
    (
        1,
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36"
        ),
        "Windows",
        "Chrome",
    ),
    (
        1,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Windows",
        "Firefox",
    ),
    (
        1,
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.5 Safari/605.1.15"
        ),
        "Mac OS X",
        "Safari",
    ),
    (1, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Linux", "Firefox"),
    (
        2,
        (
            "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.5 Mobile/15E148 Safari/604.1"
        ),
        "iOS",
        "Mobile Safari",
    ),
    (
        2,
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36"
        ),
        "Android",
        "Chrome",
    ),
)

#: Documentation address ranges (RFC 5737): realistic-looking, never a real person's address.
IP_PREFIXES: tuple[str, ...] = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """All users, column-wise; row ``i`` is user ``user_ids[i]``.

    ``taste[i]`` is a probability vector over CATEGORIES; ``favourites[i]`` lists the one or
    two favourite category indexes (main first). ``wants_anonymous`` marks users drawn to
    start anonymously; whether they did (they need two sessions) is decided with behaviour.
    """

    user_ids: list[str]
    anonymous_ids: list[str]
    age: np.ndarray
    gender: np.ndarray
    city: np.ndarray
    device: np.ndarray
    agent: np.ndarray
    ip: list[str]
    taste: np.ndarray
    favourites: list[tuple[int, ...]]
    segment: np.ndarray
    wants_anonymous: np.ndarray

    def __len__(self) -> int:
        return len(self.user_ids)

    def traits(self, row: int) -> dict[str, Any]:
        """The traits an identify event carries for user ``row`` (no contact data)."""
        country, city, _, _ = CITIES[self.city[row]]
        return {
            "age": int(self.age[row]),
            "gender": GENDERS[self.gender[row]],
            "country": country,
            "city": city,
        }

    def records(self) -> list[dict[str, Any]]:
        """One dict per user with the ``users.csv`` columns."""
        return [
            {
                "user_id": user_id,
                "age": age,
                "gender": GENDERS[gender],
                "country": CITIES[city][0],
                "city": CITIES[city][1],
                "device": DEVICES[device],
            }
            for user_id, age, gender, city, device in zip(
                self.user_ids,
                self.age.tolist(),
                self.gender.tolist(),
                self.city.tolist(),
                self.device.tolist(),
                strict=True,
            )
        ]

    @staticmethod
    def concat(parts: list[Population]) -> Population:
        """The users of ``parts``, one after another."""
        if len(parts) == 1:
            return parts[0]

        def joined(name: str) -> Any:
            values = [getattr(p, name) for p in parts]
            if isinstance(values[0], np.ndarray):
                return np.concatenate(values)
            return [v for chunk in values for v in chunk]

        return Population(**{name: joined(name) for name in Population.__slots__})


def exact_counts(shares: tuple[float, ...] | list[float], n: int) -> np.ndarray:
    """Split ``n`` into integer counts proportional to ``shares`` (largest remainder).

    Exact counts rather than random draws keep every segment present even for small ``n``.
    """
    weights = np.asarray(shares, dtype=float) / np.sum(shares)
    raw = weights * n
    counts = np.floor(raw).astype(int)
    # Ties broken by position, so the split depends on nothing but the inputs.
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def build_population(
    rng: np.random.Generator, n: int, first_number: int, id_width: int, anonymous_share: float
) -> Population:
    """Draw ``n`` users numbered from ``first_number`` (``u`` + zero-padded number)."""
    segment = rng.permutation(np.repeat(np.arange(len(SEGMENTS)), exact_counts(SEGMENT_SHARES, n)))
    segment = segment.astype(np.int8)

    device_weights = np.asarray([b.device_weights for b in BEHAVIOURS])[segment]
    device = _pick_rows(rng, device_weights).astype(np.int8)
    agent = np.empty(n, dtype=np.int8)
    for dev in range(len(DEVICES)):
        options = [i for i, entry in enumerate(USER_AGENTS) if entry[0] == dev]
        rows = np.flatnonzero(device == dev)
        agent[rows] = np.asarray(options)[rng.integers(len(options), size=len(rows))]

    city_weights = np.asarray([c[3] for c in CITIES])
    city = rng.choice(len(CITIES), size=n, p=city_weights / city_weights.sum()).astype(np.int16)
    gender = rng.choice(len(GENDERS), size=n, p=GENDER_SHARES).astype(np.int8)
    # Phone-only heavy browsers skew young; everyone else is spread over adult ages.
    mean_age = np.where(segment == MOBILE_BROWSERS, 28.0, 41.0)
    spread = np.where(segment == MOBILE_BROWSERS, 7.0, 13.0)
    age = np.clip(np.rint(rng.normal(mean_age, spread)), 18, 75).astype(np.int16)

    taste, favourites = _taste(rng, segment)

    prefix = rng.integers(len(IP_PREFIXES), size=n).tolist()
    host = rng.integers(1, 255, size=n).tolist()
    ip = [f"{IP_PREFIXES[p]}.{h}" for p, h in zip(prefix, host, strict=True)]
    anonymous_ids = [f"anon-{x:016x}" for x in rng.integers(0, 2**63, size=n, dtype=np.int64).tolist()]
    wants_anonymous = np.zeros(n, dtype=bool)
    wants_anonymous[rng.permutation(n)[: round(anonymous_share * n)]] = True

    return Population(
        user_ids=[f"u{i:0{id_width}d}" for i in range(first_number, first_number + n)],
        anonymous_ids=anonymous_ids,
        age=age,
        gender=gender,
        city=city,
        device=device,
        agent=agent,
        ip=ip,
        taste=taste,
        favourites=favourites,
        segment=segment,
        wants_anonymous=wants_anonymous,
    )


def _pick_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    # One categorical draw per row of a (rows, options) weight matrix.
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((cumulative <= draws[:, None]).sum(axis=1), weights.shape[1] - 1)


def _taste(rng: np.random.Generator, segment: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    n, n_cat = len(segment), len(CATEGORIES)
    drama = CATEGORIES.index("drama")
    fans = segment == DRAMA_FANS

    # Everyone but drama fans has a non-drama main favourite: that is what keeps the drama
    # rule precise. Drama may still be someone else's secondary favourite.
    non_drama = np.asarray([c for c in range(n_cat) if c != drama])
    primary = np.where(fans, drama, non_drama[rng.integers(len(non_drama), size=n)])
    secondary = (primary + rng.integers(1, n_cat, size=n)) % n_cat
    has_secondary = (rng.random(n) < 0.5) & ~fans

    mass = np.where(fans, rng.uniform(0.82, 0.95, n), rng.uniform(0.70, 0.85, n))
    primary_share = np.where(has_secondary, rng.uniform(0.60, 0.70, n), 1.0)

    # The leftover mass is spread evenly-ish (Dirichlet(2)) so no background category
    # outranks a favourite.
    background = rng.gamma(2.0, size=(n, n_cat))
    rows = np.arange(n)
    background[rows, primary] = 0.0
    background[rows[has_secondary], secondary[has_secondary]] = 0.0
    background *= ((1.0 - mass) / background.sum(axis=1))[:, None]

    taste = background
    taste[rows, primary] = mass * primary_share
    taste[rows[has_secondary], secondary[has_secondary]] = (mass * (1.0 - primary_share))[has_secondary]

    favourites = [
        (p, s) if h else (p,)
        for p, s, h in zip(primary.tolist(), secondary.tolist(), has_secondary.tolist(), strict=True)
    ]
    return taste, favourites
