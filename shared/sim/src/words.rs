//! Word lists the generators build plausible names from (people, companies, streets,
//! places), and the seeded helpers every generator shares to draw from them: unique
//! phones, company names and emails, slugs, tokens, scenario units.

use std::collections::HashSet;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::normalise::{email_key, name_key};

/// Given names.
pub const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Ronald",
    "Rebecca",
    "Jason",
    "Sharon",
    "Edward",
    "Laura",
    "Jeffrey",
    "Cynthia",
    "Ryan",
    "Kathleen",
    "Priya",
    "Wei",
    "Aisha",
    "Mateo",
    "Sofia",
    "Liam",
    "Noah",
    "Olivia",
    "Hiroshi",
    "Fatima",
    "Diego",
    "Ingrid",
    "Kwame",
    "Leila",
    "Tomasz",
    "Anika",
];

/// Family names.
pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Kim",
    "Chen",
    "Okafor",
    "Novak",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Larsen",
    "O'Brien",
    "McAllister",
    "Van Dyke",
    "St. Clair",
];

/// First words of company names.
pub const COMPANY_ADJECTIVES: &[&str] = &[
    "Blue",
    "Summit",
    "Pioneer",
    "Harbor",
    "Granite",
    "Silver",
    "Evergreen",
    "Northern",
    "Coastal",
    "Prairie",
    "Cedar",
    "Golden",
    "Iron",
    "Maple",
    "Redwood",
    "Riverside",
    "Sterling",
    "Liberty",
    "Frontier",
    "Keystone",
    "Lakeside",
    "Oakwood",
    "Pinnacle",
    "Crescent",
    "Atlas",
    "Beacon",
    "Cobalt",
    "Delta",
    "Echo",
    "Falcon",
    "Horizon",
    "Juniper",
    "Meridian",
    "Nova",
    "Orion",
    "Quantum",
    "Sierra",
    "Titan",
    "Vertex",
    "Willow",
];

/// Second words of company names.
pub const COMPANY_NOUNS: &[&str] = &[
    "Dental",
    "Logistics",
    "Legal",
    "Manufacturing",
    "Realty",
    "Accounting",
    "Health",
    "Construction",
    "Engineering",
    "Insurance",
    "Marketing",
    "Foods",
    "Motors",
    "Architects",
    "Pharmacy",
    "Clinic",
    "Freight",
    "Energy",
    "Labs",
    "Capital",
    "Partners",
    "Media",
    "Studios",
    "Brewing",
    "Farms",
    "Hospitality",
    "Plumbing",
    "Electric",
    "Veterinary",
    "Academy",
    "Outfitters",
    "Printing",
    "Roofing",
    "Design",
    "Consulting",
    "Properties",
    "Trucking",
    "Bakery",
    "Fitness",
    "Optometry",
];

/// Legal-form endings of company names (empty: none).
pub const COMPANY_SUFFIXES: &[&str] =
    &["Inc.", "LLC", "Group", "Co.", "Ltd.", "Corp.", "Associates", "Services", "", "Holdings"];

/// Words for CRM-only company names (never used by the external systems' companies).
pub const CRM_COMPANY_WORDS: &[&str] = &[
    "Alder",
    "Birchfield",
    "Copperline",
    "Driftwood",
    "Elmstead",
    "Foxglove",
    "Greystone",
    "Hawthorne",
    "Ivybridge",
    "Jasperton",
    "Kestrel",
    "Larkspur",
    "Moorland",
    "Nettlebrook",
    "Oxbow",
    "Pebblecreek",
    "Quarry",
    "Rookwood",
    "Saffron",
    "Thistle",
    "Umber",
    "Vantage",
    "Wrenfield",
    "Yarrow",
];

/// Street names.
pub const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Park Blvd",
    "Elm St",
    "Washington Ave",
    "Lake Dr",
    "Hill Rd",
    "Market St",
    "Commerce Way",
    "Industrial Pkwy",
    "Center St",
    "Mill Rd",
];

/// (city, state, zip prefix).
pub const CITIES: &[(&str, &str, &str)] = &[
    ("Tampa", "FL", "336"),
    ("Austin", "TX", "787"),
    ("Denver", "CO", "802"),
    ("Columbus", "OH", "432"),
    ("Raleigh", "NC", "276"),
    ("Portland", "OR", "972"),
    ("Madison", "WI", "537"),
    ("Boise", "ID", "837"),
    ("Richmond", "VA", "232"),
    ("Omaha", "NE", "681"),
    ("Toronto", "ON", "M5V"),
];

/// Job titles of customer contacts.
pub const CONTACT_TITLES: &[&str] = &[
    "Office Manager",
    "Owner",
    "CFO",
    "Operations Manager",
    "IT Coordinator",
    "Practice Manager",
    "Controller",
    "President",
    "Receptionist",
    "Purchasing Manager",
    "Director of Operations",
    "Bookkeeper",
];

/// Lower-case letters and digits of a name part ("O'Brien" -> "obrien").
pub(crate) fn slug(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).flat_map(|c| c.to_lowercase()).collect()
}

/// A random `len`-character token drawn from `alphabet` (not empty).
pub(crate) fn token(rng: &mut impl Rng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// Splits `n` records into scenario units (each at least once from 20 records on): every
/// `(unit, per mille of the records, records per unit)` of `table`, then `normal` for the
/// rest, shuffled.
pub(crate) fn plan_units<T: Copy>(rng: &mut impl Rng, n: usize, table: &[(T, usize, usize)], normal: T) -> Vec<T> {
    let mut units = Vec::new();
    let mut used = 0;
    for &(kind, per_mille, size) in table {
        let want = if n >= 20 { (n * per_mille).div_ceil(1000) } else { n * per_mille / 1000 };
        for _ in 0..want {
            if used + size <= n {
                units.push(kind);
                used += size;
            }
        }
    }
    while used < n {
        units.push(normal);
        used += 1;
    }
    units.shuffle(rng);
    units
}

/// Ten random phone digits not in `used` (then added to it).
pub(crate) fn fresh_phone(rng: &mut impl Rng, used: &mut HashSet<String>) -> String {
    loop {
        let d =
            format!("{}{}{:04}", rng.random_range(201..990), rng.random_range(200..1000), rng.random_range(0..10_000));
        if used.insert(d.clone()) {
            return d;
        }
    }
}

/// The next company name of the walk `offset` starts through every adjective, noun and
/// suffix (a round number added once all are taken) whose name key is not in `used`.
pub(crate) fn fresh_company_name(counter: &mut usize, offset: usize, used: &mut HashSet<String>) -> String {
    let (na, nn, ns) = (COMPANY_ADJECTIVES.len(), COMPANY_NOUNS.len(), COMPANY_SUFFIXES.len());
    let combos = na * nn * ns;
    loop {
        let k = (counter.wrapping_mul(7919) + offset) % combos;
        let round = *counter / combos;
        *counter += 1;
        let (a, n, s) = (k % na, (k / na) % nn, k / (na * nn));
        let mut name = format!("{} {}", COMPANY_ADJECTIVES[a], COMPANY_NOUNS[n]);
        if round > 0 {
            name.push_str(&format!(" {}", round + 1));
        }
        if !COMPANY_SUFFIXES[s].is_empty() {
            name.push(' ');
            name.push_str(COMPANY_SUFFIXES[s]);
        }
        if name_key(&name).is_some_and(|k| used.insert(k)) {
            return name;
        }
    }
}

/// A CRM-only company name (CRM word, noun, suffix; a number after ten tries) whose name
/// key is not in `used`.
pub(crate) fn fresh_crm_name(rng: &mut impl Rng, used: &mut HashSet<String>) -> String {
    let mut word = |list: &[&'static str]| list.choose(rng).copied().unwrap_or("x");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut name = format!("{} {}", word(CRM_COMPANY_WORDS), word(COMPANY_NOUNS));
        if attempt > 10 {
            name.push_str(&format!(" {attempt}"));
        }
        let suffix = word(COMPANY_SUFFIXES);
        if !suffix.is_empty() {
            name.push(' ');
            name.push_str(suffix);
        }
        if name_key(&name).is_some_and(|k| used.insert(k)) {
            return name;
        }
    }
}

/// `local@domain`, or `local2@domain`, `local3@domain`, ...: the first whose email key is
/// not in `used`.
pub(crate) fn fresh_email(used: &mut HashSet<String>, local: &str, domain: &str) -> String {
    let mut n = 1;
    loop {
        let e = if n == 1 { format!("{local}@{domain}") } else { format!("{local}{n}@{domain}") };
        if email_key(&e).is_some_and(|k| used.insert(k)) {
            return e;
        }
        n += 1;
    }
}

/// The random draws every generator makes, over its seeded RNG: implement [`Draw::rng`]
/// and the rest come for free, so all simulators draw the same way.
pub(crate) trait Draw {
    /// The generator's seeded RNG.
    fn rng(&mut self) -> &mut rand_chacha::ChaCha8Rng;

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.rng().random_range(0..n) }
    }

    /// True with probability `p` (clamped to 0..=1).
    fn chance(&mut self, p: f64) -> bool {
        self.rng().random_bool(p.clamp(0.0, 1.0))
    }

    /// One word of `list` ("x" when it is empty).
    fn word(&mut self, list: &[&'static str]) -> &'static str {
        list.choose(self.rng()).copied().unwrap_or("x")
    }
}
