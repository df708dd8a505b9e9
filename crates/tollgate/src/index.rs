//! An in-memory search index over token names, kept in step by a store.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use jiff::Timestamp;

use crate::cache::IdBuild;
use crate::matcher::{
    PreparedName, Query, SUBSTRING, Score, TIER, char_bit, char_mask, typo, typo_budget,
};
use crate::record::{TokenId, TokenRecord};
use crate::store::{ListPosition, SearchHit, SearchPosition, SearchRequest};

/// The names of every token, split for matching and filtered by bit masks, so that a fuzzy
/// query over a million names scores only the few that can match.
///
/// A store that keeps one (the memory and redb stores do) calls [`upsert`](Self::upsert)
/// and [`remove`](Self::remove) after each committed change and answers
/// [`TokenStore::search`](crate::TokenStore::search) with [`search`](Self::search). Results
/// are the matcher's, exactly:
///
/// 1. Names that contain every query word (the exact, prefix, word and substring tiers) must
///    hold every character and character pair of the words: a 64-bit mask of each per name
///    rules out almost all others without looking at them. If these fill the page, lower
///    tiers cannot reach it and the search ends.
/// 2. Otherwise abbreviation candidates must hold the query's characters and have a word
///    starting with its first; typo candidates must have a word (looked up once in the
///    vocabulary of distinct words, not per name) within the typo budget, or be within the
///    budget as a whole by their character masks.
///
/// Every candidate is then scored by [`Query::score_prepared`].
#[derive(Debug, Default)]
pub struct NameIndex {
    owners: RwLock<HashMap<String, OwnerIndex>>,
}

#[derive(Debug, Default)]
struct OwnerIndex {
    slots: Vec<Option<Slot>>,
    masks: Vec<Masks>,
    free: Vec<u32>,
    by_id: HashMap<TokenId, u32, IdBuild>,
    vocabulary: HashMap<Box<[char]>, u32>,
    words: Vec<Word>,
    /// Each word's character mask and length, side by side, so that a typo lookup scans
    /// 9 bytes a word rather than the whole `Word`.
    word_filters: Vec<(u64, u8)>,
}

#[derive(Debug)]
struct Slot {
    id: TokenId,
    created_micros: i64,
    name: PreparedName,
    words: Box<[u32]>,
}

/// A slot's filter bits, kept apart from the slot so that a search scans 32 bytes a name.
/// All zero for a free slot, which no query's characters pass.
#[derive(Debug, Clone, Copy, Default)]
struct Masks {
    chars: u64,
    pairs: u64,
    initials: u64,
    /// Characters in the compact name.
    len: u32,
}

/// What the lower-tier filter needs of a query word, computed once per search.
struct LowerWord {
    len: usize,
    chars: u64,
    first: u64,
    budget: usize,
}

#[derive(Debug)]
struct Word {
    text: Box<[char]>,
    /// Slots whose name has this word; kept only as a count, the slots carry the ids.
    uses: u32,
}

/// A 64-bit Bloom filter of adjacent character pairs.
fn pair_mask(chars: &[char]) -> u64 {
    chars.windows(2).fold(0, |mask, pair| {
        let h = (pair[0] as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(pair[1] as u64)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        mask | 1 << (h >> 58)
    })
}

fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

impl OwnerIndex {
    fn word_id(&mut self, text: &[char]) -> u32 {
        if let Some(&id) = self.vocabulary.get(text) {
            self.words[id as usize].uses += 1;
            return id;
        }
        let id = self.words.len() as u32;
        let chars = char_mask(text);
        self.words.push(Word {
            text: text.into(),
            uses: 1,
        });
        self.word_filters
            .push((chars, u8::try_from(text.len()).unwrap_or(u8::MAX)));
        self.vocabulary.insert(text.into(), id);
        id
    }

    fn remove(&mut self, id: TokenId) {
        let Some(slot_id) = self.by_id.remove(&id) else {
            return;
        };
        self.masks[slot_id as usize] = Masks::default();
        if let Some(slot) = self.slots[slot_id as usize].take() {
            for &word in &*slot.words {
                let word = &mut self.words[word as usize];
                word.uses -= 1;
                // Words stay in the vocabulary (ids are positions); unused ones match nothing.
            }
        }
        self.free.push(slot_id);
    }

    fn upsert(&mut self, id: TokenId, created_at: Timestamp, name: &str) {
        self.remove(id);
        let name = PreparedName::new(name);
        let words: Vec<&[char]> = name.words().collect();
        let word_ids: Box<[u32]> = words.iter().map(|w| self.word_id(w)).collect();
        let masks = Masks {
            chars: char_mask(name.compact()),
            pairs: pair_mask(name.compact()),
            initials: name.initials().fold(0, |mask, c| mask | char_bit(c)),
            len: u32::try_from(name.compact().len()).unwrap_or(u32::MAX),
        };
        let slot = Slot {
            id,
            created_micros: micros(created_at),
            words: word_ids,
            name,
        };
        let slot_id = match self.free.pop() {
            Some(free) => {
                self.slots[free as usize] = Some(slot);
                self.masks[free as usize] = masks;
                free
            }
            None => {
                self.slots.push(Some(slot));
                self.masks.push(masks);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(id, slot_id);
    }

    /// Candidates with their scores: the upper tiers, then (when needed) the lower ones.
    /// Candidates with their scores, and whether the lower tiers were searched too. They are
    /// skipped when the upper tiers alone fill the page, unless `all` asks for them.
    fn candidates(
        &self,
        query: &Query,
        after: Option<SearchPosition>,
        limit: usize,
        all: bool,
    ) -> (Vec<(Score, i64, TokenId)>, bool) {
        let words: Vec<(u64, u64)> = query
            .words
            .iter()
            .map(|w| (char_mask(w), pair_mask(w)))
            .collect();
        let is_after = |score: Score, slot: &Slot| {
            after.is_none_or(|after| {
                (score, slot.created_micros, slot.id)
                    < (
                        after.score,
                        micros(after.position.created_at),
                        after.position.id,
                    )
            })
        };
        let mut hits = Vec::new();
        let mut upper_after = 0;
        for (masks, slot) in self.masks.iter().zip(&self.slots) {
            let may_contain = words.iter().all(|&(chars, pairs)| {
                masks.chars & chars == chars && masks.pairs & pairs == pairs
            });
            let Some(slot) = slot.as_ref().filter(|_| may_contain) else {
                continue;
            };
            if let Some(score) = query.score_prepared(&slot.name)
                && score >= SUBSTRING * TIER
            {
                upper_after += usize::from(is_after(score, slot));
                hits.push((score, slot.created_micros, slot.id));
            }
        }
        // Everything below the substring tier ranks after these: if they fill the page (or the
        // cursor is already past them), the lower tiers need looking at only in the latter case.
        let cursor_in_upper = after.is_none_or(|a| a.score >= SUBSTRING * TIER);
        if !all && cursor_in_upper && upper_after >= limit {
            return (hits, false);
        }

        // Vocabulary words within the typo budget of each query word.
        let typo_words: Vec<Vec<bool>> = query
            .words
            .iter()
            .map(|w| {
                let budget = typo_budget(w.len());
                let chars = char_mask(w);
                self.word_filters
                    .iter()
                    .zip(&self.words)
                    .map(|(&(word_chars, len), word)| {
                        budget > 0
                            && usize::from(len) + budget >= w.len()
                            && (chars & !word_chars).count_ones() as usize <= budget
                            && word.uses > 0
                            && (typo(w, &word.text).is_some()
                                || (word.text.len() > w.len()
                                    && typo(w, &word.text[..w.len()]).is_some()))
                    })
                    .collect()
            })
            .collect();
        let lower_words: Vec<LowerWord> = query
            .words
            .iter()
            .map(|w| LowerWord {
                len: w.len(),
                chars: char_mask(w),
                first: w.first().map_or(0, |&c| char_bit(c)),
                budget: typo_budget(w.len()),
            })
            .collect();
        let whole_chars = char_mask(&query.compact);
        let whole_pairs = pair_mask(&query.compact);
        let whole_budget = typo_budget(query.compact.len());
        let whole_first = query.compact.first().map_or(0, |&c| char_bit(c));
        for (masks, slot) in self.masks.iter().zip(&self.slots) {
            let upper = words.iter().all(|&(chars, pairs)| {
                masks.chars & chars == chars && masks.pairs & pairs == pairs
            });
            let whole = (query.compact.len() >= 2
                && masks.chars & whole_chars == whole_chars
                && masks.initials & whole_first != 0)
                || (whole_budget > 0
                    && (masks.len as usize).abs_diff(query.compact.len()) <= whole_budget
                    && (whole_chars & !masks.chars).count_ones() as usize <= whole_budget
                    // An edit breaks at most three of the query's character pairs.
                    && (whole_pairs & !masks.pairs).count_ones() as usize <= 3 * whole_budget);
            let Some(slot) = slot else { continue };
            let candidate = whole
                || lower_words.iter().zip(&typo_words).zip(&words).all(
                    |((word, typos), &(chars, pairs))| {
                        // A word the name may contain (one word of the query inside the name,
                        // another only abbreviating or misspelling it: `l dk` for
                        // `prod-deploy-key`) keeps the name in the running.
                        let contained =
                            masks.chars & chars == chars && masks.pairs & pairs == pairs;
                        let abbreviation = word.len >= 2
                            && masks.chars & word.chars == word.chars
                            && masks.initials & word.first != 0;
                        // A name word within the budget lies inside the name's characters, so the
                        // same bound applies to the whole name: checked before any lookup.
                        contained
                            || abbreviation
                            || (word.budget > 0
                                && (word.chars & !masks.chars).count_ones() as usize <= word.budget
                                && slot.words.iter().any(|&id| typos[id as usize]))
                    },
                );
            if !candidate {
                continue;
            }
            if let Some(score) = query.score_prepared(&slot.name) {
                // Upper-tier names were all collected above.
                if !(upper && score >= SUBSTRING * TIER) {
                    hits.push((score, slot.created_micros, slot.id));
                }
            }
        }
        (hits, true)
    }
}

impl NameIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `record`'s name, or replaces what the index had for its id.
    pub fn upsert(&self, record: &TokenRecord) {
        self.insert(&record.owner, record.id, record.created_at, &record.name);
    }

    /// Adds the name of token `id` of `owner`, created at `created_at` (the tie-breaker after
    /// the score), or replaces what the index had for that id. What [`upsert`](Self::upsert)
    /// does, for a caller that has no [`TokenRecord`].
    pub fn insert(&self, owner: &str, id: TokenId, created_at: Timestamp, name: &str) {
        let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
        match owners.get_mut(owner) {
            Some(index) => index.upsert(id, created_at, name),
            None => owners
                .entry(owner.to_owned())
                .or_default()
                .upsert(id, created_at, name),
        }
    }

    /// The positions of the best `limit` names of `owner` for `query` strictly after
    /// `after`, best first: the order [`search`](Self::search) returns, without reading a
    /// record per hit or filtering. For a plain name search; pass the last position back as
    /// `after` for the next page.
    pub fn rank(
        &self,
        owner: &str,
        query: &Query,
        after: Option<SearchPosition>,
        limit: usize,
    ) -> Vec<SearchPosition> {
        let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
        let Some(index) = owners.get(owner) else {
            return Vec::new();
        };
        let (candidates, _) = index.candidates(query, after, limit, false);
        drop(owners);
        let mut positions: Vec<SearchPosition> = candidates
            .into_iter()
            .filter_map(|(score, created_micros, id)| {
                let position = SearchPosition {
                    score,
                    position: ListPosition {
                        created_at: Timestamp::from_microsecond(created_micros).ok()?,
                        id,
                    },
                };
                after
                    .is_none_or(|after| position < after)
                    .then_some(position)
            })
            .collect();
        if positions.len() > limit {
            positions.select_nth_unstable_by(limit, |a, b| b.cmp(a));
            positions.truncate(limit);
        }
        positions.sort_unstable_by(|a, b| b.cmp(a));
        positions
    }

    /// Forgets token `id` of `owner`.
    pub fn remove(&self, owner: &str, id: TokenId) {
        let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = owners.get_mut(owner) {
            index.remove(id);
        }
    }

    /// How many names the index holds.
    pub fn len(&self) -> usize {
        let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
        owners.values().map(|o| o.by_id.len()).sum()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers a search. `fetch` reads a candidate's record and returns it only if it passes
    /// the request's filter; it is called in result order until the page is full.
    pub fn search(
        &self,
        request: &SearchRequest<'_>,
        mut fetch: impl FnMut(TokenId) -> Option<TokenRecord>,
    ) -> Vec<SearchHit> {
        let mut all = false;
        loop {
            let (mut candidates, complete) = {
                let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
                match owners.get(request.owner) {
                    Some(index) => {
                        index.candidates(request.query, request.after, request.limit, all)
                    }
                    None => return Vec::new(),
                }
            };
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            let mut hits = Vec::with_capacity(request.limit.min(candidates.len()));
            for (score, _, id) in candidates {
                if hits.len() == request.limit {
                    break;
                }
                let Some(record) = fetch(id) else { continue };
                let hit = SearchHit { record, score };
                // The record may have changed since the index was read; trust the record.
                let position = SearchPosition {
                    score,
                    position: ListPosition::of(&hit.record),
                };
                if request.after.is_none_or(|after| position < after)
                    && request.filter.matches(&hit.record, request.now)
                {
                    hits.push(hit);
                }
            }
            // The filter may have rejected upper-tier names: then the lower tiers count.
            if hits.len() == request.limit || complete {
                return hits;
            }
            all = true;
        }
    }

    /// Heap bytes held per indexed name, on average: the names, their masks and word lists,
    /// the id map and the vocabulary. For memory accounting in benchmarks.
    pub fn bytes_per_name(&self) -> usize {
        let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
        let mut bytes = 0;
        let mut names = 0;
        for index in owners.values() {
            names += index.by_id.len();
            bytes += index.slots.capacity() * size_of::<Option<Slot>>();
            bytes += index.masks.capacity() * size_of::<Masks>();
            bytes += index.word_filters.capacity() * size_of::<(u64, u8)>();
            for slot in index.slots.iter().flatten() {
                bytes += slot.name.heap_bytes() + slot.words.len() * size_of::<u32>();
            }
            bytes += index.by_id.capacity() * (size_of::<(TokenId, u32)>() + 1);
            bytes += index.words.capacity() * size_of::<Word>();
            for word in &index.words {
                bytes += 2 * word.text.len() * size_of::<char>();
            }
            bytes += index.vocabulary.capacity() * (size_of::<(Box<[char]>, u32)>() + 1);
        }
        bytes / names.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ListFilter;
    use crate::{SecretHash, TokenHasher};

    const WORDS: &[&str] = &[
        "prod",
        "staging",
        "deploy",
        "billing",
        "service",
        "github",
        "actions",
        "ci",
        "backup",
        "nightly",
        "metrics",
        "exporter",
        "customer",
        "portal",
        "payment",
        "gateway",
        "webhook",
        "terraform",
        "cloud",
        "生产",
        "环境",
        "密钥",
        "api",
        "reader",
        "writer",
        "admin",
    ];

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.next() % items.len()]
        }
    }

    fn record(i: usize, name: String) -> TokenRecord {
        let at = Timestamp::from_microsecond(1_700_000_000_000_000 + i as i64 % 7).unwrap();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        TokenRecord {
            id: TokenId::from_bytes(id),
            owner: "o".into(),
            name,
            description: String::new(),
            scopes: Vec::new(),
            enabled: true,
            created_at: at,
            updated_at: at,
            expires_at: None,
            last_used_at: None,
            secret_hash: SecretHash::from_bytes([0; 32]),
            previous_secret: None,
            sealed_secret: None,
            hint: String::new(),
            version: 1,
        }
    }

    /// Mangles a word the way people do: drop, swap, substitute or double a letter.
    fn typo(rng: &mut Rng, word: &str) -> String {
        let mut chars: Vec<char> = word.chars().collect();
        if chars.len() < 3 {
            return word.to_owned();
        }
        let i = rng.next() % (chars.len() - 1);
        match rng.next() % 4 {
            0 => {
                chars.remove(i);
            }
            1 => chars.swap(i, i + 1),
            2 => chars[i] = 'x',
            _ => chars.insert(i, chars[i]),
        }
        chars.into_iter().collect()
    }

    #[test]
    fn the_index_finds_exactly_what_the_matcher_finds() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let index = NameIndex::new();
        let mut records = Vec::new();
        for i in 0..1500 {
            let parts = 1 + rng.next() % 3;
            let sep = ["-", "_", " ", ""][rng.next() % 4];
            let name: Vec<&str> = (0..parts).map(|_| rng.pick(WORDS)).collect();
            let record = record(i, format!("{}{i}", name.join(sep)));
            index.upsert(&record);
            records.push(record);
        }
        // Some removals and renames, as a store would report them.
        for i in (0..1500).step_by(7) {
            index.remove("o", records[i].id);
        }
        records.retain(|r| index.by_id_contains(r.id));
        for record in records.iter_mut().step_by(11) {
            record.name = format!("renamed {}", record.name);
            index.upsert(record);
        }
        let by_id: HashMap<TokenId, TokenRecord> =
            records.iter().map(|r| (r.id, r.clone())).collect();

        let mut queries: Vec<String> = Vec::new();
        for _ in 0..25 {
            let word = rng.pick(WORDS);
            queries.push(word.to_owned());
            queries.push(typo(&mut rng, word));
            queries.push(word.chars().take(3).collect());
            let other = rng.pick(WORDS);
            queries.push(format!("{other} {word}"));
            let initial = |w: &str| w.chars().next().unwrap_or('x');
            queries.push(format!("{}{}", initial(word), initial(other)));
        }
        queries.extend(["zzqx".into(), "renamed dep".into(), "q".into()]);

        for text in &queries {
            let Some(query) = Query::new(text) else {
                continue;
            };
            let mut expected: Vec<(Score, Timestamp, TokenId)> = records
                .iter()
                .filter_map(|r| query.score(&r.name).map(|s| (s, r.created_at, r.id)))
                .collect();
            expected.sort_by(|a, b| b.cmp(a));
            let expected: Vec<TokenId> = expected.into_iter().map(|e| e.2).collect();
            for limit in [3, 1000] {
                let mut got = Vec::new();
                let mut after = None;
                loop {
                    let request = SearchRequest {
                        owner: "o",
                        query: &query,
                        after,
                        limit,
                        filter: ListFilter::default(),
                        now: Timestamp::UNIX_EPOCH,
                    };
                    let page = index.search(&request, |id| by_id.get(&id).cloned());
                    after = page.last().map(SearchHit::position);
                    let done = page.len() < limit;
                    got.extend(page.into_iter().map(|h| h.record.id));
                    if done {
                        break;
                    }
                }
                assert_eq!(got, expected, "query {text:?}, page size {limit}");

                // The same order without records.
                let mut ranked = Vec::new();
                let mut after = None;
                loop {
                    let page = index.rank("o", &query, after, limit);
                    after = page.last().copied();
                    let done = page.len() < limit;
                    ranked.extend(page.into_iter().map(|p| p.position.id));
                    if done {
                        break;
                    }
                }
                assert_eq!(ranked, expected, "rank: query {text:?}, page size {limit}");
            }
        }
    }

    #[test]
    fn memory_per_name_is_bounded() {
        let index = NameIndex::new();
        let hasher = TokenHasher::default();
        for i in 0..10_000 {
            let mut r = record(i, format!("service-{i}-deploy-key"));
            r.secret_hash = hasher.hash(&i.to_string());
            index.upsert(&r);
        }
        assert_eq!(index.len(), 10_000);
        assert!(index.bytes_per_name() < 512, "{}", index.bytes_per_name());
    }

    impl NameIndex {
        fn by_id_contains(&self, id: TokenId) -> bool {
            self.owners
                .read()
                .unwrap()
                .get("o")
                .is_some_and(|o| o.by_id.contains_key(&id))
        }
    }
}
