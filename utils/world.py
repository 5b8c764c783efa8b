"""The small world the course's models are trained on, and the labelled prompts that probe them.

A seeded generator writes English about a world whose facts we know: people with single-word
names, real countries with their capitals, languages and continents, objects, places, years,
opinions and lists that repeat. Each behaviour the chapters study is a *sentence family* that
appears in the training text and also as a labelled prompt dataset:

=================  ================================================================  ==========
family             example prompt                                                    answer
=================  ================================================================  ==========
``ioi``            When Mary and John went to the store, John gave a drink to        `` Mary``
``facts``          The capital of Germany is                                         `` Berlin``
``greater_than``   The war lasted from the year 1732 to the year 17                  `` 33`` ...
``opinions``       I watched the film. It was wonderful. Overall I thought it was    `` good``
``repetition``     a list of random words, then the same list again                  (induction)
=================  ================================================================  ==========

Every dataset takes ``split="train"`` or ``split="test"``. The test split uses templates, names
and combinations that never occur in the training text (``generate_text`` only writes the train
split), so a model that passes on it has learned the behaviour, not memorised the sentences.
A training-only family, ``ioi_composed``, writes IOI sentences assembled from parts (thousands of
structures, none with a held-out template's opening), for models that should learn IOI's rule
rather than its templates.

Answers are written GPT-2 style with a leading space (``" Mary"``); the course's word-level
tokenizer (:mod:`utils.tokenizer`) makes each of them exactly one token. Years are written as
four digits and tokenized, as GPT-2 does, into a century token (``17``) and a two-digit token
(``32``).
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# The world's contents
# --------------------------------------------------------------------------------------------

NAMES = [
    "Mary", "John", "Alice", "Bob", "Sarah", "James", "Emma", "David", "Anna", "Michael",
    "Laura", "Daniel", "Lucy", "Thomas", "Kate", "Peter", "Julia", "Paul", "Rachel", "Mark",
    "Helen", "Steven", "Sophie", "Andrew", "Claire", "Robert", "Grace", "William", "Emily",
    "George", "Olivia", "Henry", "Jessica", "Jack", "Hannah", "Charles", "Amy", "Edward", "Rose",
    "Richard", "Lisa", "Joseph", "Nina", "Samuel", "Ruth", "Oliver", "Eva", "Adam", "Maria",
    "Simon", "Clara", "Victor", "Diana", "Martin", "Irene", "Frank", "Alan", "Tina", "Carl",
    "Sylvia", "Hugo", "Vera", "Oscar", "Linda", "Felix", "Paula", "Leo", "Jane", "Max", "Susan",
    "Ivan", "Monica", "Ben", "Holly", "Kevin", "Megan", "Tom", "Amber",
]
"""78 single-token first names. The last ten never appear in an IOI sentence of the training
text (they do appear in its narrative and giving sentences), so the test split can ask about
names the model has never seen in this role."""

IOI_TEST_NAMES = NAMES[-10:]

OBJECTS = [
    "drink", "book", "ball", "letter", "key", "ring", "bag", "cake", "flower", "hat", "kite",
    "lamp", "map", "pen", "phone", "picture", "shirt", "basket", "candle", "bottle", "clock",
    "coin", "cup", "box", "gift", "necklace", "scarf", "umbrella", "toy", "ticket",
]
PLACES = [
    "store", "park", "school", "garden", "market", "station", "library", "museum", "hospital",
    "office", "restaurant", "beach", "river", "forest", "cafe", "bakery", "church", "airport",
    "harbour", "theatre", "farm", "hotel", "bank", "stadium", "zoo", "castle", "village", "lake",
]

# Real-world facts, restricted to countries whose name, capital, language and continent are
# single words (continents of the Americas are answered by their first word: "South").
COUNTRIES = [
    # country, capital, language, continent
    ("France", "Paris", "French", "Europe"),
    ("Germany", "Berlin", "German", "Europe"),
    ("Italy", "Rome", "Italian", "Europe"),
    ("Spain", "Madrid", "Spanish", "Europe"),
    ("Portugal", "Lisbon", "Portuguese", "Europe"),
    ("Greece", "Athens", "Greek", "Europe"),
    ("Poland", "Warsaw", "Polish", "Europe"),
    ("Austria", "Vienna", "German", "Europe"),
    ("Hungary", "Budapest", "Hungarian", "Europe"),
    ("Sweden", "Stockholm", "Swedish", "Europe"),
    ("Norway", "Oslo", "Norwegian", "Europe"),
    ("Finland", "Helsinki", "Finnish", "Europe"),
    ("Denmark", "Copenhagen", "Danish", "Europe"),
    ("Ireland", "Dublin", "English", "Europe"),
    ("Russia", "Moscow", "Russian", "Europe"),
    ("Ukraine", "Kyiv", "Ukrainian", "Europe"),
    ("Romania", "Bucharest", "Romanian", "Europe"),
    ("Bulgaria", "Sofia", "Bulgarian", "Europe"),
    ("Netherlands", "Amsterdam", "Dutch", "Europe"),
    ("Czechia", "Prague", "Czech", "Europe"),
    ("Serbia", "Belgrade", "Serbian", "Europe"),
    ("Croatia", "Zagreb", "Croatian", "Europe"),
    ("Iceland", "Reykjavik", "Icelandic", "Europe"),
    ("Japan", "Tokyo", "Japanese", "Asia"),
    ("China", "Beijing", "Chinese", "Asia"),
    ("Thailand", "Bangkok", "Thai", "Asia"),
    ("Vietnam", "Hanoi", "Vietnamese", "Asia"),
    ("Indonesia", "Jakarta", "Indonesian", "Asia"),
    ("Iran", "Tehran", "Persian", "Asia"),
    ("Iraq", "Baghdad", "Arabic", "Asia"),
    ("Turkey", "Ankara", "Turkish", "Asia"),
    ("Mongolia", "Ulaanbaatar", "Mongolian", "Asia"),
    ("Nepal", "Kathmandu", "Nepali", "Asia"),
    ("Pakistan", "Islamabad", "Urdu", "Asia"),
    ("Bangladesh", "Dhaka", "Bengali", "Asia"),
    ("Philippines", "Manila", "Filipino", "Asia"),
    ("Egypt", "Cairo", "Arabic", "Africa"),
    ("Kenya", "Nairobi", "Swahili", "Africa"),
    ("Nigeria", "Abuja", "English", "Africa"),
    ("Morocco", "Rabat", "Arabic", "Africa"),
    ("Ghana", "Accra", "English", "Africa"),
    ("Senegal", "Dakar", "French", "Africa"),
    ("Algeria", "Algiers", "Arabic", "Africa"),
    ("Tunisia", "Tunis", "Arabic", "Africa"),
    ("Zimbabwe", "Harare", "English", "Africa"),
    ("Canada", "Ottawa", "English", "North America"),
    ("Cuba", "Havana", "Spanish", "North America"),
    ("Jamaica", "Kingston", "English", "North America"),
    ("Brazil", "Brasilia", "Portuguese", "South America"),
    ("Peru", "Lima", "Spanish", "South America"),
    ("Chile", "Santiago", "Spanish", "South America"),
    ("Colombia", "Bogota", "Spanish", "South America"),
    ("Venezuela", "Caracas", "Spanish", "South America"),
    ("Ecuador", "Quito", "Spanish", "South America"),
    ("Uruguay", "Montevideo", "Spanish", "South America"),
    ("Australia", "Canberra", "English", "Oceania"),
    ("Samoa", "Apia", "Samoan", "Oceania"),
]

GT_NOUNS = [
    "war", "expedition", "drought", "famine", "reign", "siege", "journey", "voyage", "project",
    "strike", "construction", "trial", "occupation", "festival", "crisis", "rebellion",
    "campaign", "tour", "alliance", "plague",
]
CENTURIES = [str(c) for c in range(11, 20)]

REVIEW_ITEMS = [
    "film", "movie", "book", "play", "concert", "show", "meal", "game", "album", "hotel",
    "restaurant", "exhibition", "series", "song", "novel", "trip",
]
POSITIVE = [
    "wonderful", "great", "excellent", "brilliant", "lovely", "delightful", "fantastic",
    "amazing", "superb", "charming", "beautiful", "enjoyable", "perfect", "pleasant", "moving",
    "clever", "funny", "marvellous",
]
NEGATIVE = [
    "terrible", "awful", "boring", "dreadful", "horrible", "dull", "poor", "disappointing",
    "painful", "ugly", "annoying", "bland", "messy", "weak", "tedious", "clumsy", "silly",
    "miserable",
]
POLARITY_WORDS = {"positive": " good", "negative": " bad"}

WEATHER = ["sunny", "rainy", "cold", "warm", "windy", "cloudy", "quiet", "busy"]
ANIMALS = ["dog", "cat", "horse", "bird", "rabbit", "fox", "sheep", "goat", "duck", "mouse"]
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "brown", "grey"]
JOBS = ["teacher", "doctor", "farmer", "baker", "painter", "writer", "nurse", "pilot", "cook",
        "singer", "lawyer", "builder"]

# --------------------------------------------------------------------------------------------
# Templates. The last few of each family are held out: they occur only in the test split.
# --------------------------------------------------------------------------------------------

# {A} and {B} are the first two names, {S} the repeated subject; the answer is the other name.
IOI_TEMPLATES = [
    "When {A} and {B} went to the {place}, {S} gave a {object} to",
    "Then, {A} and {B} went to the {place}. {S} gave a {object} to",
    "Then, {A} and {B} had a lot of fun at the {place}. {S} gave a {object} to",
    "Then, {A} and {B} were working at the {place}. {S} decided to give a {object} to",
    "Then, {A} and {B} were thinking about going to the {place}. {S} wanted to give a {object} to",
    "Then, {A} and {B} had a long argument, and afterwards {S} said to",
    "After {A} and {B} went to the {place}, {S} gave a {object} to",
    "When {A} and {B} got a {object} at the {place}, {S} decided to give it to",
    "While {A} and {B} were working at the {place}, {S} gave a {object} to",
    "While {A} and {B} were walking to the {place}, {S} handed a {object} to",
    "After the lunch, {A} and {B} went to the {place}. {S} gave a {object} to",
    "Afterwards, {A} and {B} went to the {place}. {S} gave a {object} to",
    "Friends {A} and {B} found a {object} at the {place}. {S} gave it to",
    "{A} and {B} met at the {place}, and then {S} handed a {object} to",
    "At the {place}, {A} and {B} found a {object}, and {S} passed it to",
    "Yesterday {A} and {B} walked to the {place}, where {S} showed a {object} to",
    "After a long day, {A} and {B} sat in the {place}. {S} gave a {object} to",
    "On Sunday {A} and {B} visited the {place}, and {S} gave a {object} to",
    "{A} and {B} were at the {place} when {S} passed a {object} to",
    "When {A} and {B} arrived at the {place}, {S} handed a {object} to",
    "Before {A} and {B} left the {place}, {S} showed a {object} to",
    "In the evening {A} and {B} met at the {place}, and {S} gave a {object} to",
    "Today {A} and {B} went to the {place}, where {S} gave a {object} to",
    "Soon after {A} and {B} got to the {place}, {S} offered a {object} to",
    # held out
    "In the morning {A} and {B} arrived at the {place}, and {S} sent a {object} to",
    "When {A} and {B} were sitting in the {place}, {S} threw a {object} to",
    "Later, {A} and {B} cleaned the {place}. {S} lent a {object} to",
    "Once {A} and {B} had left the {place}, {S} brought a {object} to",
]
IOI_N_TEST_TEMPLATES = 4

FACT_TEMPLATES = {
    "capital": [
        "The capital of {country} is",
        "The capital city of {country} is",
        "{country} has its capital in",
        "The government of {country} sits in the city of",
        "Of all the cities in {country}, the capital is",
        "If you travel to the capital of {country}, you arrive in",
    ],
    "language": [
        "The official language of {country} is",
        "In {country}, most people speak",
        "People who live in {country} speak",
        "The main language spoken in {country} is",
    ],
    "continent": [
        "{country} is a country in",
        "{country} is located in",
        "The country of {country} lies in",
        "On a map, {country} is found in",
    ],
}
"""Every fact is trained in all but one phrasing; the test split asks it in the held-out one
(a different phrasing for each country), so a correct answer means the fact was retrieved,
not the sentence recalled."""

GT_TEMPLATES = [
    "The {noun} lasted from the year {century}{start} to the year {century}",
    "The {noun} started in the year {century}{start} and ended in the year {century}",
    "The {noun} began in {century}{start} and finished in {century}",
    "The {noun} went on from {century}{start} until {century}",
    "The {noun} ran from the year {century}{start} to the year {century}",
    # held out
    "The {noun} continued from the year {century}{start} to the year {century}",
]
GT_N_TEST_TEMPLATES = 1

OPINION_TEMPLATES = [
    "I watched the {item}. It was {adj}. Overall I thought it was",
    "We went to see the {item} last night. The {item} was {adj}. In short, it was",
    "{name} read a review of the {item}. The reviewer said it was {adj}, so {name} thought it was",
    "The {item} was {adj}, and I would say it was",
    "My friend said the {item} was {adj}. I agree: it was",
    "Honestly, the {item} felt {adj}. All in all, it was",
    "{name} tried the {item} and found it {adj}. For {name}, it was",
    # held out
    "Last week I saw the {item}. I found it {adj}. To sum up, it was",
    "Everyone said the {item} was {adj}. My verdict: it was",
]
OPINION_N_TEST_TEMPLATES = 2

# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Prompt:
    """One labelled prompt.

    ``prompt`` ends just before the answer; ``answer`` is the correct next token (leading space,
    GPT-2 style) and ``wrong`` the answer a confused model would give (IOI: the subject; facts:
    the corrupted country's answer; opinions: the opposite polarity). ``corrupted`` is the same
    prompt with the decisive information changed, with the same number of tokens, for
    activation patching. ``fields`` records what filled the template.
    """

    family: str
    prompt: str
    answer: str
    wrong: str | None = None
    corrupted: str | None = None
    template: int = 0
    fields: dict = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        """The full sentence as it appears in the training text (a year's two halves are
        written together: "... to the year 1745.")."""
        joiner = self.answer.strip() if self.family == "greater_than" else self.answer
        return f"{self.prompt}{joiner}."


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")


def _stable_hash(*parts) -> int:
    """A hash that is the same in every process (Python's ``hash`` of a string is not)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


def _held_out_pair(a: str, b: str) -> bool:
    """One unordered name pair in eight is kept for the test split."""
    return _stable_hash(*sorted((a, b))) % 8 == 0


def _ioi_is_test(template: int, io: str, s: str) -> bool:
    return (template >= len(IOI_TEMPLATES) - IOI_N_TEST_TEMPLATES or io in IOI_TEST_NAMES
            or s in IOI_TEST_NAMES or _held_out_pair(io, s))


def ioi_prompts(n: int, seed: int = 0, split: str = "train") -> list[Prompt]:
    """``n`` indirect-object-identification prompts, half ABBA and half BABA.

    ABBA: "When Mary and John went to the store, John gave a drink to" -> " Mary".
    BABA: "When John and Mary went to the store, John gave a drink to" -> " Mary".
    ``wrong`` is the subject (" John"); ``corrupted`` replaces the second mention of the subject
    by a third name, so the sentence no longer says who the indirect object is.
    The test split only holds prompts with a held-out template, a held-out name or a held-out
    pair of names; the train split holds none of them.
    """
    _check_split(split)
    rng = random.Random(_stable_hash("ioi", seed, split))
    first = rng.randrange(2)  # alternate the orders, starting with a random one
    out: list[Prompt] = []
    while len(out) < n:
        t = rng.randrange(len(IOI_TEMPLATES))
        io, s, c = rng.sample(NAMES, 3)
        if _ioi_is_test(t, io, s) != (split == "test") or c in IOI_TEST_NAMES and split == "train":
            continue
        order = ("ABBA", "BABA")[(len(out) + first) % 2]
        a, b = (io, s) if order == "ABBA" else (s, io)
        fill = dict(A=a, B=b, place=rng.choice(PLACES), object=rng.choice(OBJECTS))
        template = IOI_TEMPLATES[t]
        out.append(Prompt(
            "ioi", template.format(S=s, **fill), f" {io}", wrong=f" {s}",
            corrupted=template.format(S=c, **fill), template=t,
            fields=dict(IO=io, S=s, C=c, order=order, **fill)))
    return out


# IOI sentences composed from parts, for training only: a frame joins the two names' scene to
# the subject's action. Thousands of sentence structures instead of 24, and about twenty first
# words, so the model must learn the rule (the name said once is the answer), not the position
# of the answer in a template, nor its first word. Measured: with only the templates' few first
# words, a model answered the held-out template that opens with "Once" right in 31% of ABBA
# prompts, and in 100% with "When" in its place. The held-out templates' openings never occur
# here ("In the morning", "Later,", "Once", "sitting", "cleaned", "had left"); their verbs do,
# as every verb of the giving family.
IOI_SCENES = [
    "went to the {place}", "walked to the {place}", "arrived at the {place}", "met at the {place}",
    "visited the {place}", "got to the {place}", "sat in the {place}", "travelled to the {place}",
    "had a lot of fun at the {place}", "found a {object} at the {place}", "were at the {place}",
    "were working at the {place}", "were walking to the {place}",
]
IOI_FRAMES = [
    "When {A} and {B} {scene}, {S} {action}",
    "After {A} and {B} {scene}, {S} {action}",
    "Before {A} and {B} {scene}, {S} {action}",
    "If {A} and {B} {scene}, {S} {action}",
    "{time}{A} and {B} {scene}. {S} {action}",
    "{time}{A} and {B} {scene}, and {S} {action}",
    "{time}{A} and {B} {scene}, and then {S} {action}",
    "{time}{A} and {B} {scene}, where {S} {action}",
    "{time}{A} and {B} {scene} when {S} {action}",
    "My friends {A} and {B} {scene}. {S} {action}",
    "We saw {A} and {B} at the {place}, and {S} {action}",
    "I met {A} and {B} at the {place}. {S} {action}",
    "Everyone saw {A} and {B} at the {place}, where {S} {action}",
]
IOI_TIMES = ["", "Then, ", "Yesterday ", "Today ", "On Sunday ", "In the evening ", "Last week ",
             "After the lunch, ", "After a long day, ", "Afterwards, ", "Honestly, ", "All day, ",
             "It was a {weather} day. ", "On a {weather} day, ", "In {capital}, ", "In {year}, "]
IOI_ACTIONS = [
    "gave a {object} to", "gave the {object} to", "handed a {object} to", "passed a {object} to",
    "showed a {object} to", "offered a {object} to", "sold a {object} to", "sent a {object} to",
    "lent a {object} to", "brought a {object} to", "threw a {object} to", "would give a {object} to",
    "decided to give a {object} to", "wanted to give a {object} to", "decided to show the {object} to",
]


def _ioi_composed(rng: random.Random) -> list[str]:
    """One IOI sentence from a random frame, time, scene and action, with training names only
    (no held-out name or pair), both orders equally often."""
    while True:
        io, s = rng.sample(NAMES[: -len(IOI_TEST_NAMES)], 2)
        if not _held_out_pair(io, s):
            break
    a, b = (io, s) if rng.random() < 0.5 else (s, io)
    fill = dict(place=rng.choice(PLACES), object=rng.choice(OBJECTS), weather=rng.choice(WEATHER),
                capital=rng.choice(COUNTRIES)[1], year=f"{rng.choice(CENTURIES)}{rng.randint(0, 99):02d}")
    parts = {part: rng.choice(options).format(**fill)
             for part, options in (("time", IOI_TIMES), ("scene", IOI_SCENES), ("action", IOI_ACTIONS))}
    return [rng.choice(IOI_FRAMES).format(A=a, B=b, S=s, **fill, **parts) + f" {io}."]


def _fact_test_template(country: str, attribute: str) -> int:
    return _stable_hash("fact", country, attribute) % len(FACT_TEMPLATES[attribute])


def fact_answer(country: str, attribute: str) -> str:
    """The answer token for a country's ``capital``, ``language`` or ``continent``."""
    row = next(r for r in COUNTRIES if r[0] == country)
    value = row[1 + list(FACT_TEMPLATES).index(attribute)]
    return " " + value.split()[0]


def fact_prompts(n: int | None = None, seed: int = 0, split: str = "train",
                 attributes: tuple[str, ...] = ("capital", "language", "continent")) -> list[Prompt]:
    """Factual-recall prompts: "The capital of Germany is" -> " Berlin".

    Every (country, attribute) has one held-out phrasing, used only by the test split; the train
    split uses the others. ``n=None`` returns every combination of the split in a fixed order
    (test: one prompt per country and attribute); otherwise ``n`` prompts are drawn at random.
    ``corrupted`` asks the same question about another country whose answer differs;
    ``wrong`` is that country's answer.
    """
    _check_split(split)
    combos = []
    for attribute in attributes:
        for country, *_ in COUNTRIES:
            held = _fact_test_template(country, attribute)
            for t in range(len(FACT_TEMPLATES[attribute])):
                if (t == held) == (split == "test"):
                    combos.append((attribute, country, t))
    rng = random.Random(_stable_hash("facts", seed, split))
    chosen = combos if n is None else [rng.choice(combos) for _ in range(n)]
    out = []
    for attribute, country, t in chosen:
        answer = fact_answer(country, attribute)
        other = rng.choice([c for c, *_ in COUNTRIES if fact_answer(c, attribute) != answer])
        template = FACT_TEMPLATES[attribute][t]
        out.append(Prompt(
            "facts", template.format(country=country), answer, wrong=fact_answer(other, attribute),
            corrupted=template.format(country=other), template=t,
            fields=dict(country=country, attribute=attribute, corrupted_country=other)))
    return out


def _gt_is_test(template: int, noun: str) -> bool:
    return (template >= len(GT_TEMPLATES) - GT_N_TEST_TEMPLATES
            or _stable_hash("gt", template, noun) % 6 == 0)


def greater_than_prompts(n: int, seed: int = 0, split: str = "train") -> list[Prompt]:
    """Greater-than prompts after Hanna et al. (2023).

    "The war lasted from the year 1732 to the year 17" -> any two-digit token above " 32".
    ``fields["start"]`` is the start's two-digit year (an int, 2..98); ``answer`` is one valid
    end year (the one written in the training text). ``corrupted`` starts in "01" (1701), after
    which every year is valid, so patching from it shows where the comparison is computed.
    """
    _check_split(split)
    rng = random.Random(_stable_hash("gt", seed, split))
    out = []
    while len(out) < n:
        t, noun = rng.randrange(len(GT_TEMPLATES)), rng.choice(GT_NOUNS)
        if _gt_is_test(t, noun) != (split == "test"):
            continue
        century, start = rng.choice(CENTURIES), rng.randint(2, 98)
        end = rng.randint(start + 1, 99)
        template = GT_TEMPLATES[t]
        out.append(Prompt(
            "greater_than", template.format(noun=noun, century=century, start=f"{start:02d}"),
            f" {end:02d}", corrupted=template.format(noun=noun, century=century, start="01"),
            template=t, fields=dict(noun=noun, century=century, start=start, end=end)))
    return out


def _opinion_is_test(template: int, item: str, adj: str) -> bool:
    return (template >= len(OPINION_TEMPLATES) - OPINION_N_TEST_TEMPLATES
            or _stable_hash("op", item, adj) % 8 == 0)


def opinion_prompts(n: int, seed: int = 0, split: str = "train") -> list[Prompt]:
    """Reviews whose last word states their polarity, half positive and half negative.

    "I watched the film. It was wonderful. Overall I thought it was" -> " good" (or " bad").
    ``fields["polarity"]`` is ``"positive"`` or ``"negative"``; ``corrupted`` swaps the
    adjective for one of the opposite polarity; ``wrong`` is the opposite verdict.
    """
    _check_split(split)
    rng = random.Random(_stable_hash("opinions", seed, split))
    first = rng.randrange(2)  # alternate the polarities, starting with a random one
    out = []
    while len(out) < n:
        polarity = ("positive", "negative")[(len(out) + first) % 2]
        t, item = rng.randrange(len(OPINION_TEMPLATES)), rng.choice(REVIEW_ITEMS)
        adj = rng.choice(POSITIVE if polarity == "positive" else NEGATIVE)
        if _opinion_is_test(t, item, adj) != (split == "test"):
            continue
        flipped = rng.choice(NEGATIVE if polarity == "positive" else POSITIVE)
        fill = dict(item=item, name=rng.choice(NAMES))
        template = OPINION_TEMPLATES[t]
        other = "negative" if polarity == "positive" else "positive"
        out.append(Prompt(
            "opinions", template.format(adj=adj, **fill), POLARITY_WORDS[polarity],
            wrong=POLARITY_WORDS[other], corrupted=template.format(adj=flipped, **fill),
            template=t, fields=dict(polarity=polarity, adj=adj, **fill)))
    return out


def held_out(prompt: Prompt) -> bool:
    """Whether ``prompt`` belongs to the test split, by the rule its family's generator splits
    on: the train split (and so :func:`generate_text`'s training text) never holds such a prompt."""
    fields = prompt.fields
    if prompt.family == "ioi":
        return _ioi_is_test(prompt.template, fields["IO"], fields["S"])
    if prompt.family == "facts":
        return prompt.template == _fact_test_template(fields["country"], fields["attribute"])
    if prompt.family == "greater_than":
        return _gt_is_test(prompt.template, fields["noun"])
    if prompt.family == "opinions":
        return _opinion_is_test(prompt.template, fields["item"], fields["adj"])
    raise ValueError(f"no split rule for the family {prompt.family!r}")


def word_pool() -> list[str]:
    """The content words that random-word sequences are drawn from (all single tokens)."""
    words = (NAMES + OBJECTS + PLACES + [c for row in COUNTRIES for c in row[:3]] + GT_NOUNS
             + REVIEW_ITEMS + POSITIVE + NEGATIVE + WEATHER + ANIMALS + COLOURS + JOBS)
    return sorted(set(words))


def repeated_sequences(n: int, length: int = 20, seed: int = 0, split: str = "train") -> list[list[str]]:
    """``n`` sequences of ``length`` random words from :func:`word_pool`, without repeats inside
    a sequence. Shown twice in a row, the second copy is predictable only by induction: look
    back for the current word and copy what followed it. The splits use disjoint seeds."""
    _check_split(split)
    rng = random.Random(_stable_hash("repeat", seed, split))
    pool = word_pool()
    return [rng.sample(pool, length) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# Running text
# --------------------------------------------------------------------------------------------

def _narrative(rng: random.Random) -> list[str]:
    """A few sentences of ordinary story about one person, touching every part of the world."""
    name, friend = rng.sample(NAMES, 2)
    country, capital, language, continent = rng.choice(COUNTRIES)
    he = rng.choice(["He", "She"])
    century, year = rng.choice(CENTURIES), rng.randint(0, 99)
    options = [
        f"{name} lives in {capital}, the capital of {country}.",
        f"{name} was born in {country} in the year {century}{year:02d}.",
        f"{he} speaks {language} at home.",
        f"{capital} is the capital of {country}, and people there speak {language}.",
        f"{country} is in {continent}, and {capital} is its largest city.",
        f"{name} works as a {rng.choice(JOBS)} near the {rng.choice(PLACES)}.",
        f"It was a {rng.choice(WEATHER)} day in {capital}.",
        f"{name} bought a {rng.choice(COLOURS)} {rng.choice(OBJECTS)} at the {rng.choice(PLACES)}.",
        f"{he} has a {rng.choice(ANIMALS)} and a {rng.choice(ANIMALS)}.",
        f"{name} and {friend} are old friends.",
        f"{friend} visited {name} in {capital} last year.",
        f"The {rng.choice(OBJECTS)} was on the table next to the {rng.choice(OBJECTS)}.",
        f"{he} walked to the {rng.choice(PLACES)} with {friend}.",
        f"{name} thinks the {rng.choice(REVIEW_ITEMS)} was {rng.choice(POSITIVE + NEGATIVE)}.",
        f"In {century}{year:02d}, {name} travelled from {capital} to {rng.choice(COUNTRIES)[1]}.",
        f"{friend} asked {name} about the {rng.choice(GT_NOUNS)}.",
        # words of the held-out templates, so that the test split's novelty is the combination
        f"In the morning {name} arrived at the {rng.choice(PLACES)} and sent a letter home.",
        f"{friend} was sitting in the {rng.choice(PLACES)} when {name} threw a stone.",
        f"Later, {name} cleaned the {rng.choice(OBJECTS)} and lent it to a neighbour.",
        f"Once the {rng.choice(GT_NOUNS)} continued, {name} left and brought food.",
        f"Last week {name} saw the {rng.choice(REVIEW_ITEMS)}. Everyone had a verdict. To sum up, {he.lower()} liked it.",
    ]
    return rng.sample(options, rng.randint(2, 4))


GIVING_VERBS = ["gave", "sent", "lent", "brought", "threw", "handed", "passed", "showed", "offered", "sold"]


def _giving(rng: random.Random) -> list[str]:
    """One person giving something to another, with many verbs: after "<verb> a <thing> to"
    comes the receiver, whatever the verb. Every name gives and receives here, IOI's held-out
    names too: the IOI test asks whether the circuit generalises to names it never saw in IOI,
    not whether the model can say a name it never saw after "to" (measured: trained without
    them here, a model answered 0.78 of IOI test prompts whose answer is a held-out name right,
    0.99 of the others)."""
    giver, receiver = rng.sample(NAMES, 2)
    thing, place = rng.choice(OBJECTS), rng.choice(PLACES)
    return [rng.choice([f"{giver} {rng.choice(GIVING_VERBS)} a {thing} to {receiver}.",
                        f"At the {place}, {giver} {rng.choice(GIVING_VERBS)} the {thing} to {receiver}."])]


def _review(rng: random.Random) -> list[str]:
    """A longer review whose adjectives all share one polarity: material for steering."""
    positive = rng.random() < 0.5
    adjs = rng.sample(POSITIVE if positive else NEGATIVE, 3)
    item, name = rng.choice(REVIEW_ITEMS), rng.choice(NAMES)
    verb = "loved" if positive else "hated"
    verdict = "good" if positive else "bad"
    return [f"{name} saw the {item}.", f"The {item} was {adjs[0]} and {adjs[1]}.",
            f"{name} {verb} it.", f"It was {adjs[2]}.", f"In the end, it was {verdict}."]


def _list_sentences(rng: random.Random) -> list[str]:
    """A list that is written down and later read again: repetition inside prose."""
    name = rng.choice(NAMES)
    words = rng.sample(word_pool(), rng.randint(4, 12))
    listed = " , ".join(words)
    return [f"{name} wrote a list : {listed} .", f"Later {name} read the list again : {listed} ."]


def _random_repeat(rng: random.Random) -> list[str]:
    """Random words, then the same words again (a document of its own: no prose around it)."""
    words = rng.sample(word_pool(), rng.randint(6, 30))
    return [" ".join(words + words + words[: rng.randint(0, len(words))])]


FAMILY_WEIGHTS = {
    "ioi": 0.28,
    "facts": 0.20,
    "greater_than": 0.14,
    "opinions": 0.12,
    "review": 0.04,
    "list": 0.04,
    "narrative": 0.12,
    "giving": 0.06,
}
"""How often each family starts a sentence group in the training text. IOI and facts are
oversampled: they are the behaviours that need the most examples to learn."""


def _sentences(family: str, rng: random.Random, split: str) -> list[str]:
    seed = rng.randrange(2**31)
    if family == "ioi":
        return [ioi_prompts(1, seed, split)[0].text]
    if family == "facts":  # three facts at a time: there are many to learn
        return [p.text for p in fact_prompts(3, seed, split)]
    if family == "greater_than":  # two ranges at a time: the comparison needs many examples
        return [p.text for p in greater_than_prompts(2, seed, split)]
    if family == "opinions":
        return [opinion_prompts(1, seed, split)[0].text]
    if family == "review":
        return _review(rng)
    if family == "list":
        return _list_sentences(rng)
    if family == "giving":
        return _giving(rng)
    if family == "ioi_composed":
        return _ioi_composed(rng)
    return _narrative(rng)


def generate_document(rng: random.Random, split: str = "train", min_words: int = 60,
                      random_repeat_prob: float = 0.08, family_weights: dict | None = None) -> str:
    """One document: sentence groups drawn by ``family_weights`` (default
    :data:`FAMILY_WEIGHTS`) until about ``min_words`` tokens, or (with probability
    ``random_repeat_prob``) a bare random-word repeat."""
    _check_split(split)
    if rng.random() < random_repeat_prob:
        return _random_repeat(rng)[0]
    families, weights = zip(*(family_weights or FAMILY_WEIGHTS).items())
    parts: list[str] = []
    words = 0
    while words < min_words:
        for sentence in _sentences(rng.choices(families, weights)[0], rng, split):
            parts.append(sentence)
            words += len(sentence.split()) + sentence.count(",") + 1
    return " ".join(parts)


def generate_text(n_documents: int, seed: int = 0, split: str = "train", **kwargs) -> list[str]:
    """``n_documents`` documents of the small world, the same for the same ``seed``.

    The models are trained on ``split="train"`` only; ``split="test"`` writes text in which
    every IOI, fact, greater-than and opinion sentence comes from the held-out test split.
    """
    rng = random.Random(_stable_hash("text", seed, split))
    return [generate_document(rng, split, **kwargs) for _ in range(n_documents)]
