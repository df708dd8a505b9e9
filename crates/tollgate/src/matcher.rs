//! Fuzzy matching of token names.
//!
//! A [`Query`] scores a name in tiers, each strictly above the next:
//!
//! | tier | the query… | example query → name |
//! |---|---|---|
//! | exact | equals the name, ignoring case and separators | `proddeploy` → `Prod-Deploy` |
//! | prefix | starts the name | `prod dep` → `prod-deploy-key` |
//! | word | has every word among the name's words, in any order | `deploy prod` → `prod-deploy` |
//! | substring | has every word inside the name | `ploy` → `prod-deploy` |
//! | abbreviation | has every word as initials or a subsequence | `pd` → `prod-deploy` |
//! | typo | has every word within a few edits of a name word | `depoly` → `prod-deploy` |
//!
//! Matching is case-, width- and separator-insensitive (`-`, `_`, `.`, spaces, camelCase
//! boundaries all split words) and Unicode-aware: CJK text is matched by characters, so `生产`
//! finds `生产环境密钥`. A query that matches no tier returns `None`: nonsense finds nothing.
//! Within a tier, names the query covers more of score higher; equal scores are left to the
//! caller to order (the [`TokenManager`](crate::TokenManager) orders them newest first).

use unicode_normalization::UnicodeNormalization;

/// The score of a match: higher is better. Scores are comparable only for the same query.
pub type Score = u32;

pub(crate) const TIER: Score = 1000;
const EXACT: Score = 6;
const PREFIX: Score = 5;
const WORD: Score = 4;
pub(crate) const SUBSTRING: Score = 3;
const ABBREVIATION: Score = 2;
const TYPO: Score = 1;

/// A prepared search query.
///
/// ```
/// use tollgate::Query;
///
/// let query = Query::new("depoly prod").unwrap();
/// assert!(query.score("prod-deploy").is_some());
/// assert!(query.score("staging-metrics").is_none());
/// assert!(Query::new("   ").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Query {
    raw: String,
    pub(crate) words: Vec<Vec<char>>,
    pub(crate) compact: Vec<char>,
}

/// A name split once for repeated scoring: search indexes keep one per name so that a query
/// does not normalize every name again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedName {
    /// The lower-cased words run together.
    compact: Box<[char]>,
    /// Index in `compact` where each word starts.
    starts: Box<[u32]>,
}

impl PreparedName {
    /// Splits `name` as the matcher does.
    pub fn new(name: &str) -> Self {
        prepare(name)
    }

    pub(crate) fn words(&self) -> impl Iterator<Item = &[char]> + '_ {
        let ends = self
            .starts
            .iter()
            .skip(1)
            .map(|&s| s as usize)
            .chain(std::iter::once(self.compact.len()));
        self.starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| &self.compact[start as usize..end])
    }

    fn is_start(&self, index: usize) -> bool {
        self.starts.binary_search(&(index as u32)).is_ok()
    }

    /// The characters, lower-cased, without separators.
    pub fn compact(&self) -> &[char] {
        &self.compact
    }

    /// The characters that start a word.
    pub(crate) fn initials(&self) -> impl Iterator<Item = char> + '_ {
        self.starts.iter().map(|&s| self.compact[s as usize])
    }

    /// Heap bytes this value holds, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.compact.len() * size_of::<char>() + self.starts.len() * size_of::<u32>()
    }
}

impl Query {
    /// Prepares a query; `None` when it has no letters or digits.
    pub fn new(query: &str) -> Option<Self> {
        let prepared = prepare(query);
        if prepared.compact.is_empty() {
            return None;
        }
        Some(Self {
            raw: query.trim().to_owned(),
            words: prepared.words().map(<[char]>::to_vec).collect(),
            compact: prepared.compact.to_vec(),
        })
    }

    /// The query as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The query's words and compact form, as [`Terms::of`] splits them.
    pub fn terms(&self) -> Terms {
        Terms {
            words: self.words.iter().map(|w| w.iter().collect()).collect(),
            compact: self.compact.iter().collect(),
        }
    }

    /// Scores `name`; `None` when it is not relevant.
    pub fn score(&self, name: &str) -> Option<Score> {
        self.score_prepared(&prepare(name))
    }

    /// Scores a name split beforehand; the same result as [`score`](Self::score).
    pub fn score_prepared(&self, name: &PreparedName) -> Option<Score> {
        if name.compact.is_empty() {
            return None;
        }
        let coverage = coverage_bonus(self.compact.len(), name.compact.len());
        if *name.compact == *self.compact {
            return Some(EXACT * TIER + coverage);
        }
        if name.compact.starts_with(&self.compact) {
            return Some(PREFIX * TIER + coverage);
        }
        let mut tier = WORD;
        let mut bonus_sum = 0;
        for word in &self.words {
            match classify_word(word, name) {
                Some((word_tier, bonus)) => {
                    tier = tier.min(word_tier);
                    bonus_sum += bonus;
                }
                None => return self.score_as_whole(name, coverage),
            }
        }
        let words = self.words.len() as Score;
        let bonus = (coverage + bonus_sum / words).min(TIER - 1);
        let per_word = Some(tier * TIER + bonus);
        // A word-by-word abbreviation or typo match may still be beaten by reading the query
        // as one run of characters (a typo in a name typed without separators).
        if tier <= ABBREVIATION {
            return per_word.max(self.score_as_whole(name, coverage));
        }
        per_word
    }

    /// Matches the query with separators removed against the whole name.
    fn score_as_whole(&self, name: &PreparedName, coverage: Score) -> Option<Score> {
        // A one-word query is its own compact form: its abbreviation was tried word by word
        // already, with a score at least as high, so only the whole-name typo is new.
        if self.words.len() > 1
            && self.compact.len() >= 2
            && let Some(bonus) = abbreviation(&self.compact, name)
        {
            return Some(ABBREVIATION * TIER + (coverage / 2 + bonus).min(TIER - 1));
        }
        typo(&self.compact, &name.compact).map(|similarity| TYPO * TIER + similarity)
    }
}

/// A text as the matcher sees it: lower-cased (NFKC) words and their concatenation.
///
/// Stores that push search down keep these beside each name (see [`Query::score`] for how
/// they are compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The words, in order.
    pub words: Vec<String>,
    /// The words run together: the name without separators.
    pub compact: String,
}

impl Terms {
    /// Splits `text` as the matcher does.
    pub fn of(text: &str) -> Self {
        let prepared = prepare(text);
        Self {
            words: prepared.words().map(|w| w.iter().collect()).collect(),
            compact: prepared.compact.iter().collect(),
        }
    }
}

/// How many edits a query word of `chars` characters may be from a name word and still match
/// in the typo tier (Damerau-Levenshtein distance; a transposition is one edit).
pub fn typo_budget(chars: usize) -> usize {
    match chars {
        0..=2 => 0,
        3..=5 => 1,
        6..=10 => 2,
        _ => 3,
    }
}

/// Up to 500 points for how much of the name the query covers.
fn coverage_bonus(query_len: usize, name_len: usize) -> Score {
    (500 * query_len.min(name_len) / name_len.max(1)) as Score
}

/// The best tier one query word reaches in a name, with a bonus within that tier.
fn classify_word(word: &[char], name: &PreparedName) -> Option<(Score, Score)> {
    if name.words().any(|w| w == word) {
        return Some((WORD, 400));
    }
    if name.words().any(|w| w.starts_with(word)) {
        return Some((SUBSTRING, 400));
    }
    if contains(&name.compact, word) {
        return Some((SUBSTRING, 200));
    }
    if word.len() >= 2
        && let Some(bonus) = abbreviation(word, name)
    {
        return Some((ABBREVIATION, bonus));
    }
    name.words()
        .filter_map(|w| {
            let whole = typo(word, w);
            // A typo in the beginning of a longer word: `depoly` for `deployment`.
            let start = (w.len() > word.len())
                .then(|| typo(word, &w[..word.len()]).map(|s| s.saturating_sub(100)))
                .flatten();
            whole.max(start)
        })
        .max()
        .map(|similarity| (TYPO, similarity))
}

fn contains(haystack: &[char], needle: &[char]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Matches `query` as a subsequence of the name that starts at a word start, preferring
/// characters at word starts (initials). Returns a bonus up to 500, or `None`.
fn abbreviation(query: &[char], name: &PreparedName) -> Option<Score> {
    // If the rest of the query is no subsequence after the first word that starts with its
    // first character, it is none after any later one either: most names stop here.
    let first = name
        .starts
        .iter()
        .map(|&s| s as usize)
        .find(|&s| name.compact[s] == query[0])?;
    let mut rest = name.compact[first + 1..].iter();
    if !query[1..].iter().all(|c| rest.any(|x| x == c)) {
        return None;
    }
    let mut best = None;
    for start in name.starts.iter().map(|&s| s as usize) {
        if name.compact[start] != query[0] {
            continue;
        }
        // Two greedy walks: one jumps to the next word start holding the character (finds
        // initials), the other takes the nearest character (finds every subsequence).
        for prefer_starts in [true, false] {
            best = best.max(walk(query, name, start, prefer_starts));
        }
    }
    best
}

fn walk(query: &[char], name: &PreparedName, start: usize, prefer_starts: bool) -> Option<Score> {
    let mut pos = start;
    let mut at_starts = 1usize;
    for &c in &query[1..] {
        let next_start = prefer_starts
            .then(|| {
                name.starts
                    .iter()
                    .map(|&s| s as usize)
                    .find(|&s| s > pos && name.compact[s] == c)
            })
            .flatten();
        let next = match next_start {
            Some(s) => s,
            None => pos + 1 + name.compact[pos + 1..].iter().position(|&x| x == c)?,
        };
        if name.is_start(next) {
            at_starts += 1;
        }
        pos = next;
    }
    let span = pos - start + 1;
    // A scattered subsequence that is neither initials nor dense is noise.
    let initials_ratio = at_starts as f64 / query.len() as f64;
    let density = query.len() as f64 / span as f64;
    if initials_ratio < 0.5 && density < 0.5 {
        return None;
    }
    Some((250.0 * initials_ratio + 250.0 * density) as Score)
}

/// Typo tolerance: Damerau-Levenshtein distance within a length-dependent budget. Returns a
/// similarity bonus up to 900.
pub(crate) fn typo(query: &[char], target: &[char]) -> Option<Score> {
    let len = query.len();
    let budget = typo_budget(len);
    if budget == 0 {
        return None;
    }
    if target.len().abs_diff(len) > budget {
        return None;
    }
    // Each edit brings in at most one character the other side lacks, so more missing
    // characters than the budget cannot match: most names are ruled out before the distance.
    if (char_mask(query) & !char_mask(target)).count_ones() as usize > budget {
        return None;
    }
    let distance = damerau_levenshtein_within(query, target, budget)?;
    if distance == 0 {
        return None;
    }
    let similarity = 1.0 - distance as f64 / len.max(target.len()) as f64;
    Some((900.0 * similarity) as Score)
}

/// The Damerau-Levenshtein distance of `a` and `b` (`strsim`'s), when it is at most `max`.
///
/// `strsim` allocates and fills a full matrix; most candidates are far apart, so a banded
/// optimal-string-alignment pass without allocation decides first. OSA bounds the true
/// distance from both sides (DL ≤ OSA ≤ 2·DL), and the two agree at 0 and 1, so `strsim` is
/// asked only when the OSA distance is between 2 and `2 * max`.
fn damerau_levenshtein_within(a: &[char], b: &[char], max: usize) -> Option<usize> {
    const CAP: usize = 64;
    if b.len() >= CAP {
        let distance = strsim::generic_damerau_levenshtein(a, b);
        return (distance <= max).then_some(distance);
    }
    let limit = 2 * max;
    // Three rows of the OSA matrix, rotated: `rows[i % 3]` is row i.
    let mut rows = [[0usize; CAP]; 3];
    for (j, cell) in rows[0].iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    let mut previous_min = 0;
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur][0] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[prev][j] + 1)
                .min(rows[cur][j - 1] + 1)
                .min(rows[prev][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[prev2][j - 2] + 1);
            }
            rows[cur][j] = d;
            row_min = row_min.min(d);
        }
        // Later rows build on this one, or on the one before through a transposition.
        if row_min > limit && previous_min + 1 > limit {
            return None;
        }
        previous_min = row_min;
    }
    let osa = rows[a.len() % 3][b.len()];
    match osa {
        0 | 1 => (osa <= max).then_some(osa),
        _ if osa > limit => None,
        _ => {
            let distance = strsim::generic_damerau_levenshtein(a, b);
            (distance <= max).then_some(distance)
        }
    }
}

/// One bit per character class: `a`–`z`, `0`–`9`, and 28 buckets for everything else.
pub(crate) fn char_bit(c: char) -> u64 {
    let bit = match c {
        'a'..='z' => c as u32 - 'a' as u32,
        '0'..='9' => 26 + c as u32 - '0' as u32,
        _ => 36 + (c as u32).wrapping_mul(2_654_435_761) % 28,
    };
    1 << bit
}

/// The classes of the characters in `chars`.
pub(crate) fn char_mask(chars: &[char]) -> u64 {
    chars.iter().fold(0, |mask, &c| mask | char_bit(c))
}

/// NFKC, lower case, split into words at anything that is not a letter or digit, at
/// lower-to-upper case changes and where CJK meets other scripts.
fn prepare(text: &str) -> PreparedName {
    let mut compact = Vec::with_capacity(text.len());
    let mut starts = Vec::new();
    let mut in_word = false;
    let mut previous: Option<char> = None;
    for c in text.nfkc() {
        if !c.is_alphanumeric() {
            in_word = false;
            previous = None;
            continue;
        }
        let boundary = previous
            .is_some_and(|p| (p.is_lowercase() && c.is_uppercase()) || is_cjk(p) != is_cjk(c));
        if !in_word || boundary {
            starts.push(compact.len() as u32);
            in_word = true;
        }
        compact.extend(c.to_lowercase());
        previous = Some(c);
    }
    PreparedName {
        compact: compact.into_boxed_slice(),
        starts: starts.into_boxed_slice(),
    }
}

/// Han, kana and Hangul: scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x3134F) // CJK Extensions B–G
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    use crate::testing::RELEVANCE_NAMES as NAMES;

    /// Names matching `query`, best first (ties in list order).
    fn ranked(query: &str) -> Vec<&'static str> {
        let query = Query::new(query).unwrap();
        let mut hits: Vec<_> = NAMES
            .iter()
            .enumerate()
            .filter_map(|(i, name)| query.score(name).map(|s| (s, i, *name)))
            .collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.into_iter().map(|(_, _, name)| name).collect()
    }

    fn tier(query: &str, name: &str) -> Option<Score> {
        Query::new(query).unwrap().score(name).map(|s| s / TIER)
    }

    #[test]
    fn tiers_are_ordered_as_documented() {
        assert_eq!(tier("Prod_Deploy", "prod-deploy"), Some(EXACT));
        assert_eq!(tier("proddeploy", "prod-deploy"), Some(EXACT));
        assert_eq!(tier("prod dep", "prod-deploy-key"), Some(PREFIX));
        assert_eq!(tier("deploy prod", "prod-deploy"), Some(WORD));
        assert_eq!(tier("ploy", "prod-deploy"), Some(SUBSTRING));
        assert_eq!(tier("pd", "prod-deploy"), Some(ABBREVIATION));
        assert_eq!(tier("depoly", "prod-deploy"), Some(TYPO));
    }

    #[test]
    fn relevance_table() {
        let table: &[(&str, &[&str])] = &[
            // Exact beats everything; the prefix match comes next.
            ("prod deploy", &["prod-deploy", "Prod Deploy Key"]),
            // Words in any order.
            ("deploy prod", &["prod-deploy", "Prod Deploy Key"]),
            // Separator-insensitive, camelCase split.
            ("github actions", &["GitHubActions", "github-actions-ci"]),
            ("githubactions", &["GitHubActions", "github-actions-ci"]),
            // A whole word ranks above a word it merely starts.
            ("billing", &["billing-service", "billing_service_readonly"]),
            // Substring inside a word.
            ("xport", &["metrics-exporter"]),
            // Abbreviations.
            ("gac", &["github-actions-ci"]),
            ("pgw", &["payment-gateway-webhook"]),
            // Typos: substituted, dropped, swapped, doubled letters.
            ("custmer", &["customer-portal"]),
            ("cuztomer portal", &["customer-portal"]),
            ("bakcup", &["backup-nightly"]),
            ("metrcs", &["metrics-exporter"]),
            ("terrafrom", &["terraform-cloud"]),
            (
                "biling servce",
                &["billing-service", "billing_service_readonly"],
            ),
            // CJK.
            ("生产", &["生产环境密钥"]),
            ("环境", &["生产环境密钥", "测试环境 API"]),
            ("测试 api", &["测试环境 API"]),
            ("生产坏境", &["生产环境密钥"]),
            ("同期", &["データ同期"]),
        ];
        for (query, expected) in table {
            let got = ranked(query);
            assert!(
                got.len() >= expected.len() && &got[..expected.len()] == *expected,
                "query {query:?}: expected {expected:?} first, got {got:?}"
            );
        }
    }

    #[test]
    fn deploy_ranks_word_matches_before_typos() {
        let got = ranked("deploy");
        assert_eq!(got[0], "prod-deploy");
        let mut next = got[1..3].to_vec();
        next.sort_unstable();
        assert_eq!(next, ["Prod Deploy Key", "staging-deploy"]);
    }

    #[test]
    fn nonsense_finds_nothing() {
        for query in [
            "zzqx",
            "qwerty",
            "xylophone",
            "kubernetes",
            "zz top",
            "量子",
        ] {
            assert_eq!(ranked(query), Vec::<&str>::new(), "query {query:?}");
        }
    }

    #[test]
    fn the_bounded_distance_agrees_with_strsim() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "ca",
            "acb",
            "deploy",
            "depoly",
            "dpeloy",
            "deplyo",
            "staging",
            "stagng",
            "staaging",
            "reconciler",
            "reconcler",
            "payments",
            "paymemts",
            "生产环境",
            "生产坏境",
            "kubernetes",
            "billing",
            "biling",
            "xyz",
        ];
        for a in words {
            for b in words {
                let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                let exact = strsim::generic_damerau_levenshtein(&a, &b);
                for max in 0..4 {
                    let expected = (exact <= max).then_some(exact);
                    assert_eq!(
                        damerau_levenshtein_within(&a, &b, max),
                        expected,
                        "{a:?} {b:?} within {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_queries_are_rejected() {
        assert!(Query::new("").is_none());
        assert!(Query::new(" -_. ").is_none());
        assert_eq!(Query::new("  a b ").unwrap().as_str(), "a b");
    }

    #[test]
    fn scores_are_deterministic() {
        let q = Query::new("deploy").unwrap();
        assert_eq!(q.score("prod-deploy"), q.score("prod-deploy"));
        assert!(q.score("prod-deploy") > q.score("prod-deploy-key-with-a-long-name"));
    }
}
