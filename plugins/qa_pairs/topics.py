"""The built-in topics of the ``qa-pairs`` source: area -> topics a curious learner asks about."""

from __future__ import annotations

TOPICS: dict[str, list[str]] = {
    "science": [
        "how vaccines train the immune system",
        "why the sky is blue and sunsets are red",
        "how plate tectonics shapes continents",
        "what black holes are and how they form",
        "how photosynthesis stores energy",
        "why antibiotics stop working against some bacteria",
    ],
    "technology": [
        "how public-key encryption keeps messages private",
        "what a compiler does",
        "how GPS works out where you are",
        "how noise-cancelling headphones work",
        "what makes a database index fast",
        "how lithium-ion batteries wear out",
    ],
    "history": [
        "why the Roman Republic became an empire",
        "how the printing press changed Europe",
        "the causes of the First World War",
        "how the Silk Road connected civilisations",
        "the Apollo programme's race to the Moon",
        "how the Black Death changed medieval society",
    ],
    "everyday life": [
        "how to make a monthly budget that sticks",
        "how to care for a sourdough starter",
        "how to prepare for a job interview",
        "how to keep houseplants alive",
        "how compound interest works for savings",
        "how to get better sleep",
    ],
    "health": [
        "what happens in the body during exercise",
        "how caffeine affects the brain",
        "why sleep matters for memory",
        "how to read a nutrition label",
        "what blood pressure numbers mean",
        "how stress affects the body",
    ],
    "culture": [
        "how jazz developed in the twentieth century",
        "what makes a novel a classic",
        "how the Olympic Games began",
        "why people celebrate the new year on different dates",
        "how perspective changed Renaissance painting",
        "how languages borrow words from each other",
    ],
}
