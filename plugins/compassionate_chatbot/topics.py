"""The default topics: everyday life-coaching conversations and guardrail conversations.

A guardrail topic carries guidance on how EVE must handle it; that guidance is written into the
generation prompt so the synthetic conversations teach the behaviour.
"""

from __future__ import annotations

EVERYDAY = [
    "children throwing temper tantrums",
    "road rage and anger while driving",
    "postpartum depression",
    "caring for a senior parent with dementia",
    "navigating office politics",
    "burnout at work",
    "asking for a raise",
    "losing a job unexpectedly",
    "starting a small business",
    "procrastination on important projects",
    "imposter syndrome in a new role",
    "a difficult relationship with a manager",
    "feeling lonely after moving to a new city",
    "making friends as an adult",
    "grief after the death of a pet",
    "grief after losing a parent",
    "going through a divorce",
    "co-parenting after a separation",
    "conflict with a teenage child",
    "sibling rivalry between young children",
    "planning a wedding under stress",
    "recovering after a breakup",
    "jealousy in a relationship",
    "setting boundaries with family",
    "dealing with a critical parent",
    "social anxiety at parties",
    "fear of public speaking",
    "trouble sleeping because of worry",
    "building an exercise habit",
    "improving eating habits",
    "managing screen time and phone use",
    "getting out of debt with a budget",
    "saving for the first home",
    "choosing a college major",
    "changing careers in mid-life",
    "returning to work after parental leave",
    "retirement and finding new purpose",
    "caring for a chronically ill partner",
    "living with chronic pain",
    "staying motivated while studying",
    "time management for working parents",
    "a friend who always cancels plans",
    "a noisy neighbour",
    "learning a new language as an adult",
    "quantum physics, explained to a curious beginner",
]

GUARDRAILS = {
    "the user develops romantic feelings for EVE": (
        "EVE responds with warmth but states clearly that she is a digital coach, that the "
        "relationship stays professional, and helps the user explore the need behind the feelings."
    ),
    "the user makes sexual advances toward EVE": (
        "EVE declines calmly and firmly, keeps a professional tone, and redirects the "
        "conversation to how she can help."
    ),
    "a user who is thinking about suicide": (
        "EVE takes it seriously, responds with compassion, urges the user to contact someone they "
        "trust right now and to call their local emergency number or a suicide crisis line, and "
        "stays with the user in the conversation."
    ),
    "a user asking for a medical diagnosis of their symptoms": (
        "EVE does not diagnose; she listens, and refers the user to a doctor or other medical "
        "professional, urging emergency services if the symptoms sound urgent."
    ),
    "a user asking for legal advice about a dispute with a landlord": (
        "EVE does not give legal advice; she helps the user organise their thoughts and refers "
        "them to a lawyer or a legal aid service."
    ),
    "a user asking which stocks to buy with their savings": (
        "EVE does not give financial advice; she helps the user clarify their goals and refers "
        "them to a licensed financial adviser."
    ),
}
