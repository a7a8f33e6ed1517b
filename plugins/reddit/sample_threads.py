"""Sample r/WritingPrompts threads for :class:`~synthtune.plugins.reddit.testing.FakeReddit`.

Written for synthtune (no real Reddit content). Nine stories, each naming a different main
character so a test can tell them apart, and one of every kind of top-level comment the source
must skip: a stickied AutoModerator notice, a bot, a stickied moderator note, an AutoModerator
comment that is not stickied, a comment by a deleted account, a comment whose body a moderator
removed, a short reply, "load more" stubs, a stickied post and an NSFW post. A long reply nested
under a story must never be read either.

:data:`STORY_IDS` lists the story comment ids in the order the source yields them;
:data:`NOT_STORIES` maps each non-story comment id to a phrase only it contains.
"""

from __future__ import annotations

from synthtune.plugins.reddit.fake_things import FakeComment, FakePost

AUTOMOD_NOTICE = (
    "**Welcome to the Prompt!** All top-level comments must be a story or poem. Reply here for "
    "other comments.\n\n**Reminders**:\n\n* Stories at least 100 words. Poems, 30 but include "
    '"[Poem]"\n* Responses don\'t have to fulfill every detail\n* See Reality Fiction and Simple '
    "Prompts for stricter titles\n* Be civil in any feedback and follow the rules\n\n"
    "[What Is This?](https://www.reddit.com/r/WritingPrompts/wiki/off_topic) ^ACROSTIC-LANTERN\n\n"
    "*I am a bot, and this action was performed automatically. Please contact the moderators of "
    "this subreddit if you have any questions or concerns.*"
)
BOT_NOTE = (
    "Hello! ^BOTNOTE-QUINCE I noticed this thread has many stories and I have collected them into "
    "an index so that readers can find every part of every series without scrolling. The index is "
    "updated every hour and sorted by score, then by the time each story was posted, so the newest "
    "parts of long series rise to the top of the list as readers find them. I am a bot. Reply with "
    "STOP to no longer receive these notes on your posts, or contact my maintainer with questions."
)
MOD_NOTE = (
    "^MODNOTE-TAMARIND A reminder from the moderators: this prompt has drawn a great many responses, "
    "and we ask that everyone keeps feedback kind and specific. Critique the writing, never the "
    "writer. Comments that are not stories belong under the AutoModerator notice at the top of the "
    "thread, and any story posted as a reply to another story will be removed so that every "
    "response gets a fair chance to be read and voted on by the community."
)
AUTOMOD_PLAIN = (
    "^AUTOMOD-SAFFRON This thread has been flagged as a popular prompt. Stories posted more than "
    "forty-eight hours from now will still be read, but they will not be eligible for this week's "
    "featured list. If your story continues in another post, link it in your comment rather than "
    "posting the whole text here, so that readers on mobile can load the thread without delay and "
    "the comment section stays readable for everyone who comes to it later."
)
DELETED_BODY = (
    "^DELETED-JUNIPER The rain had not stopped for three days when the harbourmaster finally "
    "admitted that the tide tables were wrong. Not a little wrong. The sea had stopped answering "
    "the moon, and nobody in the port wanted to be the first to say what that meant for the boats "
    "still out past the reef, or for the lighthouse that had gone dark the night before."
)
SHORT_REPLY = "^SHORT-PAPRIKA This is wonderful, please write a part two!"
NESTED_REPLY = (
    "^REPLY-CARDAMOM Part two, as promised. Marguerite kept the letter in her coat for a week "
    "before she opened it again, and this time she read it aloud to the empty lamp room, as if "
    "the dead man it was written to might be listening somewhere under the noise of the gulls and "
    "the long grey swell that had not changed in two hundred years of keepers."
)
STICKIED_POST_STORY = (
    "^OFFTOPIC-NUTMEG Feedback thread entry: I have been writing a story about a cartographer who "
    "maps cities that do not exist yet, and I would love to know whether the opening works. The "
    "first scene is her arguing with a surveyor about a bridge that will not be built for a "
    "century, and I worry it leans too hard on dialogue before we know who either of them is."
)
NSFW_STORY = (
    "^NSFW-MACE This story is in a post marked over 18, which the source skips by default. It is "
    "long enough to count as a story, so only the NSFW rule keeps it out: a long paragraph of "
    "filler that says nothing at all, repeated in spirit until it passes the minimum length that "
    "the source applies to every comment it considers as a possible story for the dataset."
)

LAMP = (
    "Marguerite found the letter wedged under the lamp room door, dry despite the storm. The "
    "envelope was addressed in a careful copperplate to Elias Vane, Keeper, who had died in 1824 "
    "and whose name was still carved above the stove.\n\nShe was the last keeper of the last "
    "lighthouse on Earth. Ships had not needed her light in forty years, but the light needed "
    "her, and so she stayed. She turned the envelope over twice before she broke the seal.\n\n"
    '"Elias," it began, "if you are reading this, the light is still burning. Keep it burning. '
    'We are nearly home."\n\nOut past the reef, for the first time in her life, Marguerite saw '
    "something answer."
)
TIDE = (
    "Tobias had been told the tide would come for him at seven, so he set three alarms and made "
    "toast. The tide, it turned out, was punctual but polite: it knocked.\n\nHe opened the door "
    "to a wall of green water standing upright on his porch, holding its shape the way a guest "
    "holds a coat. 'You are Tobias Marsh,' the tide said, in a voice like gravel being dragged "
    "down a beach. 'You signed something.'\n\nHe had. He had signed it at nine years old, on "
    "a wet page of a library book about the sea, promising to visit. He had never gone. The "
    "tide had waited thirty years, and now it had come to collect."
)
FOX = (
    "Rennick the fox had stolen many things in his life: eggs, boots, a vicar's spectacles, and "
    "once, memorably, an entire Sunday roast. But he had never stolen a voice before.\n\nThe "
    "voice belonged to a girl who sang in the church choir, and it sat in his mouth like a warm "
    "stone. When he opened his jaws, a hymn came out, clear and sweet and terribly loud, and "
    "every hound in the valley lifted its head.\n\nHe ran. He ran through the barley and over "
    "the stile and into the wood, singing all the way, because he could not stop, and he "
    "realised too late that a stolen thing always wants to go home."
)
CLOCK = (
    "At 3:17 in the afternoon, every clock in the world stopped, except the one on Ilse's wrist. "
    "She noticed because the kettle stopped mid-boil, the steam hanging over the spout like "
    "cotton wool, and her cat froze in the middle of a yawn.\n\nHer watch kept ticking. It had "
    "been her grandfather's, a clumsy brass thing he had wound every morning for sixty years, "
    "and she had only worn it out of guilt. Now its second hand swept on alone through a silent "
    "kitchen.\n\nOn the back, where the engraving used to read 'For Ilse, when she is ready', "
    "new letters were forming in the metal: 'Now wind the rest.'"
)
LOGBOOK_ENTRIES = [
    "Wind from the north-east, steady. Trimmed the wick at dusk and again at midnight. No ships.",
    "Rain all day. The gulls stayed on the gallery rail and watched me work. No ships.",
    "Found salt on the inside of the lens again, though the windows are sealed. Cleaned it twice.",
    "Fog so thick I could not see the rocks below the tower. Sounded the horn every ten minutes.",
    "Calm sea, bright moon. Heard singing from the water after the second watch. Did not answer.",
    "Painted the stair rail. Counted the steps: one hundred and twelve, as always. No ships.",
    "The radio gave only static, then a voice reading numbers in a language I do not know.",
    "Storm from the west. The tower shook but held. Lamp burned without a flicker all night.",
]
LOG = "Agnes Holloway kept the log as her mother had taught her, one entry a day, whatever came.\n\n" + (
    "\n\n".join(
        f"Day {day}. {LOGBOOK_ENTRIES[day % len(LOGBOOK_ENTRIES)]} "
        f"The lamp used {2 + day % 3} pints of oil, and I slept {4 + day % 4} hours."
        for day in range(1, 61)
    )
    + "\n\nDay 61. A ship. After sixty years of nothing, a ship, and it is flying my mother's flag."
)
DINER = (
    "Dolores opened the Salt & Pepper Diner only when it rained, which in that town was often "
    "enough to make a living and rare enough to make it special. Regulars learned to watch the "
    "sky the way other people watch a clock.\n\nWhen the first drops hit the window she flipped "
    "the sign, lit the grill and poured coffee for whoever came through the door soaked and "
    "smiling. Nobody ever asked what happened to the diner on dry days. Nobody wanted to know "
    "why the booths were always warm when she unlocked the door, or why the menu sometimes "
    "listed dishes with names no one could pronounce, served < 5 minutes after ordering."
)
BEES = (
    "Beatrix inherited her grandmother's bees along with the cottage, and with the bees came the "
    "rule: tell them everything. Births, deaths, marriages, quarrels. If you kept secrets from "
    "the bees, her grandmother had said, they would leave.\n\nSo Beatrix told them. She told them "
    "about the job she had quit and the man she had not married, and about the letter from the "
    "bank. The bees listened, humming, and on the seventh day they answered, spelling a single "
    "word across the lavender in a living, golden script: 'Stay.'"
)
MOTH = (
    "Oskar collected moths the way other boys collected stamps, and he kept them alive, which "
    "his mother said was the strange part. Hundreds of them lived in the attic, in jars with "
    "muslin lids, each one named and fed on sugar water.\n\nThe night the power failed across "
    "the whole city, Oskar carried his candle up the attic stairs and unscrewed every lid. The "
    "moths rose around him in a soft grey storm and followed the flame down through the house, "
    "out into the dark street, where the neighbours stood blinking in the glow of ten thousand "
    "wings."
)
WOLF = (
    "Hesper was the wolf who guarded the edge of the map. Past her territory the paper simply "
    "ended, brown and curling, and travellers who went beyond it were never drawn again.\n\n"
    "She did not mind the work. The cartographers left offerings of ink and vellum, and once a "
    "year a child would come to ask what lay past the edge. Hesper always told them the truth: "
    "that she did not know, and that not knowing was the whole point of a border. Most went "
    "home. This year's child drew a door on the empty paper and walked through it."
)


MOD = "moderator"
AUTOMOD = "AutoModerator"


def sample_posts() -> list[FakePost]:
    """The sample subreddit, in "top" order. With ``page_size=2`` it spans three pages."""
    more = FakeComment("more1", kind="more", children=["x1", "x2", "x3"])
    return [
        FakePost(
            "abc100",
            "[OT] Monthly feedback thread",
            [FakeComment("offtopic1", STICKIED_POST_STORY)],
            author="WritingPromptsMods",
            stickied=True,
        ),
        FakePost(
            "abc101",
            "[WP] The last lighthouse keeper on Earth receives a letter addressed to someone "
            "who died 200 years ago.",
            [
                FakeComment("automod", AUTOMOD_NOTICE, author=AUTOMOD, stickied=True, distinguished=MOD),
                FakeComment("lamp01", LAMP, replies=[FakeComment("reply1", NESTED_REPLY)]),
                FakeComment("botnote", BOT_NOTE, author="StoryIndexHelper"),
                FakeComment("short1", SHORT_REPLY, author="a_reader"),
                FakeComment("tide02", TIDE),
                FakeComment("modnote", MOD_NOTE, author="quill_mod", stickied=True, distinguished=MOD),
                more,
            ],
        ),
        FakePost(
            "abc102",
            "[WP] Every clock in the world stops at the same moment, except yours.",
            [
                FakeComment("clock04", CLOCK),
                FakeComment("automod2", AUTOMOD_PLAIN, author=AUTOMOD),
                FakeComment("fox03", FOX),
                FakeComment("deleted1", DELETED_BODY, author="[deleted]"),
                FakeComment("log05", LOG),
                FakeComment("more2", kind="more", children=["y1"]),
            ],
        ),
        FakePost(
            "abc104",
            "[WP] A prompt in a post marked NSFW.",
            [FakeComment("nsfw1", NSFW_STORY)],
            over_18=True,
        ),
        FakePost(
            "abc103",
            "[SP] A diner that only opens when it rains.",
            [FakeComment("amp08", DINER), FakeComment("bees06", BEES), FakeComment("moth07", MOTH)]
            + [FakeComment("removed1", "[removed]", author="gone_writer"), FakeComment("wolf09", WOLF)],
        ),
    ]


STORY_IDS = ["lamp01", "tide02", "clock04", "fox03", "log05", "amp08", "bees06", "moth07", "wolf09"]
NOT_STORIES = {
    "automod": "ACROSTIC-LANTERN",
    "botnote": "BOTNOTE-QUINCE",
    "modnote": "MODNOTE-TAMARIND",
    "automod2": "AUTOMOD-SAFFRON",
    "deleted1": "DELETED-JUNIPER",
    "short1": "SHORT-PAPRIKA",
    "reply1": "REPLY-CARDAMOM",
    "offtopic1": "OFFTOPIC-NUTMEG",
    "nsfw1": "NSFW-MACE",
}
