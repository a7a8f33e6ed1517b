"""A stand-in plot writer: the fake OpenAI server answering plot-generator requests with plots.

Not a language model: each answer is composed from sentence templates filled with the request's
own genre, place, period and tone (read from the prompt) and characters drawn with a seed taken
from the request, so every answer is a well-formed multi-paragraph outline of about 1,100-1,250
characters that names its setting, ends with a resolution, and differs from the others. It is
the dataset the README's CPU tuning measurement trains on (see "A real model tuned on CPU").

    python bench/plot_server.py     # prints its base URL; serves until stdin closes
    OPENAI_BASE_URL=URL OPENAI_API_KEY=fake tune run --preset plot-generator --limit 150 --yes
"""

from __future__ import annotations

import random
import re
import sys
from typing import Any

from synthtune.core.testing import FakeOpenAI, body_digest

PROMPT = re.compile(
    r"for an? (?P<genre>.+?) film set in (?P<place>.+?) during (?P<period>.+?)\. "
    r"The tone is (?P<modifier>.+?)\.",
)
FIRST = ["Amara", "Jonas", "Keiko", "Ravi", "Lucia", "Thabo", "Mei", "Henri", "Nadia", "Omar", "Elena"]
LAST = ["Okafor", "Lindqvist", "Tanaka", "Mehta", "Rossi", "Dlamini", "Chen", "Moreau", "Haddad"]
JOBS = [
    "a disgraced surgeon",
    "a night-shift mechanic",
    "a young archivist",
    "a retired smuggler",
    "a travelling musician",
    "a junior detective",
    "a botanist",
    "a schoolteacher",
]
WANTS = [
    "to clear the family name",
    "to win back a lost love",
    "to escape a debt that is not theirs",
    "to find the sister who vanished years ago",
    "to prove a forgotten theory right",
    "to keep a small business alive",
]
INCIDENTS = [
    "a sealed letter arrives with no sender",
    "a stranger is found on the doorstep at dawn",
    "an old map turns up inside a second-hand book",
    "a fire destroys the only record of a debt",
    "a rival offers a bargain too good to refuse",
]
TWISTS = [
    "the ally they trusted most has been lying from the start",
    "the danger they fled is waiting at the journey's end",
    "the prize they chase would ruin the people they love",
    "the enemy turns out to want the same thing for a better reason",
]
ENDINGS = [
    "and the last scene finds them at peace, older and wiser",
    "and a final image hints that the story is not quite over",
    "and they walk away with less than they wanted but more than they had",
    "and the town that doubted them gathers to watch the sunrise together",
]


def fields_of(body: dict[str, Any]) -> dict[str, str]:
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    found = PROMPT.search(" ".join(text.split()))
    if found is None:
        return {"genre": "drama", "place": "a small town", "period": "an uncertain time", "modifier": "quiet"}
    return found.groupdict()


def plot(body: dict[str, Any]) -> str:
    """A plot outline for the request's fields, the same for the same request."""
    f = fields_of(body)
    rng = random.Random(body_digest(body))
    hero, rival = (f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(2))
    job, want = rng.choice(JOBS), rng.choice(WANTS)
    tone = f["modifier"].split(" & ")[0]
    paragraphs = [
        f"In {f['place']} during {f['period']}, {hero} is {job} who wants {want}. The film opens "
        f"on an ordinary day that already feels {tone}, and we learn what {hero.split()[0]} "
        f"stands to lose and why no one else in {f['place']} can help. Around them, {f['period']} "
        f"presses in: the streets, the work and the habits of the age shape every choice they make.",
        f"The story turns when {rng.choice(INCIDENTS)}. It pulls {hero.split()[0]} into the "
        f"orbit of {rival}, whose own plans depend on the same secret, and the two begin an "
        f"uneasy partnership that gives this {f['genre']} story its engine.",
        f"The conflict rises as each step forward costs something: a friendship, a hiding place, "
        f"a night of sleep. Halfway through, {hero.split()[0]} discovers that "
        f"{rng.choice(TWISTS)}, and the tone grows more {tone} with every scene.",
        f"At the climax, {hero.split()[0]} and {rival.split()[0]} face the truth in the one place "
        f"in {f['place']} they swore never to return to, and {hero.split()[0]} must choose "
        f"between what they came for and the people who stood by them.",
        f"In the resolution the choice is made, the secret comes out, {rng.choice(ENDINGS)}.",
    ]
    return "\n\n".join(paragraphs)


def main() -> None:
    server = FakeOpenAI(plot, validate=False, keep_requests=False)
    server.start()
    print(server.base_url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()


if __name__ == "__main__":
    main()
