"""Name pools of the generated data: countries, products, people, reference sets.

The first suppliers have deliberately awkward names (non-ASCII, apostrophes,
ampersands) so encoders and matchers meet them in every test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    """What a supplier's country implies: currency, cities, legal suffixes, id formats."""

    name: str
    code: str
    currency: str
    cities: tuple[str, ...]
    suffixes: tuple[str, ...]
    phone: str
    iban_length: int | None
    tld: str


COUNTRIES: tuple[Country, ...] = (
    Country(
        "Germany", "DE", "EUR", ("Berlin", "München", "Köln", "Hamburg", "Düsseldorf"),
        ("GmbH", "AG", "GmbH & Co. KG"), "+49", 22, "de",
    ),
    Country(
        "France", "FR", "EUR", ("Paris", "Lyon", "Marseille", "Orléans", "Besançon"),
        ("SARL", "SA", "SAS"), "+33", 27, "fr",
    ),
    Country(
        "United Kingdom", "GB", "GBP", ("London", "Manchester", "Leeds", "Bristol"),
        ("Ltd", "PLC", "LLP"), "+44", 22, "co.uk",
    ),
    Country(
        "United States", "US", "USD", ("New York", "Chicago", "Austin", "Seattle", "Denver"),
        ("Inc.", "LLC", "Corp."), "+1", None, "com",
    ),
    Country(
        "Ukraine", "UA", "UAH", ("Kyiv", "Lviv", "Kharkiv", "Odesa", "Dnipro"),
        ("LLC", "ТОВ", "ПрАТ"), "+380", 29, "com.ua",  # noqa: RUF001
    ),
    Country(
        "Poland", "PL", "PLN", ("Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk"),
        ("Sp. z o.o.", "S.A."), "+48", 28, "pl",
    ),
    Country(
        "Spain", "ES", "EUR", ("Madrid", "Barcelona", "Sevilla", "Málaga"),
        ("S.L.", "S.A."), "+34", 24, "es",
    ),
    Country(
        "Netherlands", "NL", "EUR", ("Amsterdam", "Rotterdam", "Utrecht"),
        ("B.V.", "N.V."), "+31", 18, "nl",
    ),
    Country(
        "Sweden", "SE", "SEK", ("Stockholm", "Göteborg", "Malmö"), ("AB",), "+46", 24, "se",
    ),
    Country(
        "Canada", "CA", "CAD", ("Toronto", "Montréal", "Vancouver"),
        ("Inc.", "Ltd."), "+1", None, "ca",
    ),
)  # fmt: skip
COUNTRY_BY_CODE = {c.code: c for c in COUNTRIES}

FIXED_SUPPLIERS: tuple[tuple[str, str], ...] = (
    ("Müller & Söhne GmbH", "DE"),
    ("Société Générale d'Équipement SARL", "FR"),
    ("O'Brien & Daughters Ltd", "GB"),
    ("Łódzkie Zakłady Mechaniczne Sp. z o.o.", "PL"),
    ("Київпостач ТОВ", "UA"),  # noqa: RUF001
    ("Øresund Logistik AB", "SE"),
)
"""The first suppliers of every dataset: names that break naive encoders and matchers."""

ADJECTIVES = (
    "Global", "Nordic", "Alpine", "Atlantic", "Pacific", "Central", "United", "Premier",
    "Blue", "Green", "Silver", "Golden", "Rapid", "Smart", "Bright", "Prime", "Apex",
    "Summit", "Vertex", "Delta", "Omega", "Polar", "Solar", "Urban", "Royal", "Metro",
    "Coastal", "Eastern", "Western", "Grand",
)  # fmt: skip
NOUNS = (
    "Office Supplies", "Logistics", "Industrial", "Electronics", "Paper", "Furniture",
    "Software", "Consulting", "Catering", "Packaging", "Machinery", "Chemicals", "Textiles",
    "Print", "Hardware", "Networks", "Facilities", "Energy", "Tools", "Medical", "Cleaning",
    "Security", "Travel", "Freight", "Components", "Metals", "Plastics", "Foods", "Labs",
    "Systems",
)  # fmt: skip
PRODUCTS = (
    ("A4 Copy Paper", 4.5), ("Ballpoint Pen", 0.8), ("Office Chair", 189.0),
    ("Standing Desk", 549.0), ("Laptop 14\"", 1249.0), ("USB-C Dock", 219.0),
    ("Monitor 27\"", 329.0), ("Toner Cartridge", 79.9), ("Coffee Beans 1kg", 24.5),
    ("Safety Gloves", 6.2), ("Hard Hat", 18.0), ("Cleaning Service", 45.0),
    ("Consulting Hour", 150.0), ("Cloud Subscription", 99.0), ("Forklift Rental", 320.0),
    ("Shipping Pallet", 12.0), ("Cable Ties", 3.1), ("LED Panel", 58.0),
    ("First Aid Kit", 35.0), ("Whiteboard Markers", 7.4), ("Ergonomic Mouse", 49.0),
    ("Headset", 89.0), ("Printer Service", 120.0), ("Bürostuhl Komfort", 210.0),
    ("Café Crème Capsules", 19.9),
)  # fmt: skip
VARIANTS = ("", " Blue", " Black", " Pack of 10", " Premium", " XL", " (recycled)", " Pro")
FIRST_NAMES = (
    "Anna", "José", "Zoë", "Øyvind", "Łukasz", "Олена", "Liam", "Emma", "Noah", "Mia",
    "François", "Jürgen", "Sofía", "Björn", "Chloé", "Marek", "Ivan", "Aiko", "Omar", "Lea",
)  # fmt: skip
LAST_NAMES = (
    "Müller", "García", "Smith", "Kowalski", "Шевченко", "Dubois", "Jensen", "O'Neil",
    "Rossi", "Novák", "Andersson", "Brown", "Nguyen", "Schmidt", "López", "Bauer",
)  # fmt: skip
LOCATIONS = (
    ("Berlin HQ", "Friedrichstraße 68, 10117 Berlin, Germany", "+49 30 1234567"),
    ("Kyiv Office", "вул. Хрещатик 22, Київ 01001, Ukraine", "+380 44 123 4567"),
    ("London Office", "1 Poultry, London EC2R 8EJ, United Kingdom", "+44 20 7946 0000"),
    ("Paris Office", "12 Rue de Rivoli, 75004 Paris, France", "+33 1 23 45 67 89"),
    ("Warsaw Hub", "ul. Marszałkowska 100, 00-026 Warszawa, Poland", "+48 22 123 45 67"),
    ("New York Office", "350 5th Ave, New York, NY 10118, USA", "+1 212 555 0100"),
    ("Madrid Branch", "Calle de Alcalá 45, 28014 Madrid, Spain", "+34 91 123 45 67"),
    ("Remote", "", ""),
)
LEGAL_ENTITIES = (
    ("Acme Europe", "Acme Europe GmbH", "DE811234567", "Deutsche Bank", "DE89370400440532013000"),
    ("Acme UK", "Acme UK Ltd", "GB123456789", "Barclays", "GB29NWBK60161331926819"),
    ("Acme US", "Acme Inc.", "12-3456789", "Chase", "000123456789"),
    ("Acme Ukraine", "ТОВ «Акме Україна»", "43123456", "ПриватБанк",  # noqa: RUF001
     "UA213223130000026007233566001"),
)  # fmt: skip
TAXES = (
    ("VAT 19%", 19.0, False), ("VAT 7%", 7.0, False), ("TVA 20%", 20.0, False),
    ("VAT 20%", 20.0, False), ("Sales Tax 8.875%", 8.875, False), ("ПДВ 20%", 20.0, False),
    ("VAT 0%", 0.0, False), ("Withholding 5%", 5.0, True),
)  # fmt: skip
PAYMENT_TERMS = (
    ("Net 30", 0.0, 100.0, 30, 1), ("Net 60", 0.0, 100.0, 60, 1),
    ("Due on receipt", 0.0, 100.0, 0, 1), ("50% prepayment", 50.0, 50.0, 30, 2),
    ("Net 15", 0.0, 100.0, 15, 1), ("100% prepayment", 100.0, 0.0, 0, 2),
)  # fmt: skip
ICF_NAMES = ("Category", "GL Account", "Cost Center", "Project", "Tax Code")
DCF_NAMES = ("Department", "Class", "Project", "Region", "Approval Route")
OPTION_WORDS = (
    "Equipment", "Products", "Services", "Software", "Travel", "Marketing", "R&D",
    "Operations", "Finance", "HR", "Legal", "Facilities", "Logistics", "Sales", "Support",
    "Engineering", "Procurement", "Administration", "Training", "Events",
)  # fmt: skip
WAREHOUSES = ("Main Warehouse", "Spare Parts Store", "Cold Storage", "Returns Depot")
BUDGETS = ("Marketing", "IT", "Operations", "Facilities", "Travel", "R&D")
ROLES = ("ROLE_USER", "ROLE_BUYER", "ROLE_APPROVER", "ROLE_ACCOUNTANT", "ROLE_ADMIN")
COMMENTS = (
    "Please deliver before Friday.", "Approved — within budget.", "Prix à confirmer.",
    "Bitte Rechnung an die Buchhaltung.", "Split across two cost centers.", "Urgent",
)  # fmt: skip
