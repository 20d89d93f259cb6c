"""Words the synthetic catalog is written in: categories, their vocabulary, search queries.

Every category owns words no other category uses, so a bag-of-words model (TF-IDF) can
tell an item's category from its description, and a search query reveals a user's taste.
"""

from __future__ import annotations

#: The item categories, in the fixed order used for every category index in this package.
CATEGORIES: tuple[str, ...] = (
    "drama",
    "comedy",
    "action",
    "documentary",
    "kids",
    "sci_fi",
    "romance",
    "horror",
)

#: Share of the catalog in each category (same order as CATEGORIES).
CATEGORY_SHARES: tuple[float, ...] = (0.18, 0.16, 0.14, 0.10, 0.10, 0.11, 0.11, 0.10)

#: Typical price per category; actual prices scatter around it.
CATEGORY_BASE_PRICE: tuple[float, ...] = (9.0, 7.0, 12.0, 8.0, 6.0, 11.0, 7.0, 9.0)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Nouns double as search queries, so they are single words that never repeat across categories.
NOUNS: dict[str, tuple[str, ...]] = {
    "drama": _words(
        "family secret inheritance grief courtroom marriage betrayal confession reunion widow estate sacrifice"
    ),
    "comedy": _words(
        "prank roommate mixup sitcom neighbour uncle party fiasco misfit sketch bachelor blunder"
    ),
    "action": _words(
        "heist explosion mercenary chase agent convoy rooftop showdown commando pursuit assassin vault"
    ),
    "documentary": _words(
        "archive wildlife history investigation interview expedition climate ocean economy biography footage civilization"
    ),
    "kids": _words(
        "puppy dragon treehouse unicorn playground teddy bunny pirate princess crayon lullaby friendship"
    ),
    "sci_fi": _words(
        "starship android galaxy colony wormhole cyborg asteroid quantum alien reactor orbit clone"
    ),
    "romance": _words(
        "lovers kiss wedding heartbreak sweetheart proposal valentine honeymoon crush soulmate courtship romance"
    ),
    "horror": _words(
        "ghost haunting demon curse cellar ritual zombie poltergeist corpse asylum seance werewolf"
    ),
}

ADJECTIVES: dict[str, tuple[str, ...]] = {
    "drama": _words("quiet bitter fractured unspoken fragile lingering solemn wounded"),
    "comedy": _words("hilarious awkward zany goofy absurd cheeky clumsy witty"),
    "action": _words("explosive relentless armored rogue tactical fearless lethal turbo"),
    "documentary": _words("archival investigative historical scientific untold factual ancient remarkable"),
    "kids": _words("cheerful colorful magical cuddly silly tiny sparkly brave"),
    "sci_fi": _words("interstellar dystopian cybernetic futuristic orbital synthetic galactic robotic"),
    "romance": _words("passionate romantic starcrossed yearning sweet enchanting flirtatious devoted"),
    "horror": _words("haunted cursed eerie bloody sinister macabre gruesome possessed"),
}

# Category-neutral sentence frames: the filler words are shared by all categories, so only
# the slotted-in words carry the category signal. Every frame takes one adjective and two
# nouns, so the category with more sentences always has more signal words.
SENTENCES: tuple[str, ...] = (
    "A {a} story about a {n} and a {m}.",
    "When the {n} meets a {a} {m}, everything changes.",
    "Expect {a} moments, one {n} and plenty of {m}.",
    "Told through {a} scenes of {n} and {m}.",
    "Critics call it a {a} take on the {n} and the {m}.",
    "At its heart lie a {a} {n} and a {m}.",
)

TITLE_FRAMES: tuple[str, ...] = (
    "The {A} {N}",
    "{N} of the {A} {M}",
    "{A} {N}",
    "The {N} and the {M}",
)

#: Search queries: every noun of every category, in category order (index = cat * QUERIES_PER + k).
QUERIES_PER_CATEGORY = 12
QUERIES: tuple[str, ...] = tuple(word for cat in CATEGORIES for word in NOUNS[cat])

# Word indexes are drawn once for all categories, so every category needs lists of equal length.
assert all(len(NOUNS[c]) == QUERIES_PER_CATEGORY for c in CATEGORIES)
assert len({len(ADJECTIVES[c]) for c in CATEGORIES}) == 1
assert len(set(QUERIES)) == len(QUERIES), "a noun in two categories would blur the signal"
