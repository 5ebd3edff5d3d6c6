//! What a spool's batches share: the coded columns' texts (a row holds a
//! 4-byte key into them), the lookups and pseudonyms of addresses already
//! made, and the columns of nulls that all-null columns are slices of.

use std::collections::hash_map::{Entry, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use arrow::array::{new_null_array, Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::anonymize::Anonymizer;
use crate::codes::Mnemonic;
use crate::dataset::schema::{self, TRANSACTIONS};
use crate::enrich::{self, Enricher};
use crate::error::Result;
use crate::ingest::dns::{DecodeError, Malformed, MalformedCounts};

/// Text columns with few distinct values. A spooled batch holds them as
/// keys (4 bytes a row) into one list of texts per spool ([`Memo::texts`])
/// instead of the texts (6 to 19 bytes a row, and an offset), and
/// `write::gather` turns them back into text as it hands rows to the writer.
pub const CODED: [&str; 10] = [
    schema::STATUS,
    schema::TRANSPORT,
    schema::QTYPE,
    schema::QCLASS,
    schema::OPCODE,
    schema::RCODE,
    schema::CAPTURE,
    schema::SOURCE,
    schema::CLIENT_IP,
    schema::SERVER_IP,
];
// places in `CODED` and `Memo::codes`
pub(super) const STATUS: usize = 0;
pub(super) const TRANSPORT: usize = 1;
pub(super) const QTYPE: usize = 2;
pub(super) const QCLASS: usize = 3;
pub(super) const OPCODE: usize = 4;
pub(super) const RCODE: usize = 5;
pub(super) const CAPTURE: usize = 6;
pub(super) const SOURCE: usize = 7;
// places in `Memo::addresses`
pub(super) const CLIENT: usize = 0;
pub(super) const SERVER: usize = 1;

/// The schema of the batches [`super::build`] makes: `transactions`, with the
/// [`CODED`] columns as keys.
pub static SPOOLED: LazyLock<SchemaRef> = LazyLock::new(|| {
    let coded = DataType::Int32;
    let fields: Vec<Field> = TRANSACTIONS
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if CODED.contains(&f.name().as_str()) {
                f.with_data_type(coded.clone())
            } else {
                f
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        TRANSACTIONS.metadata().clone(),
    ))
});

/// The texts a spool's coded column has met, each under its key.
#[derive(Default)]
pub(super) struct Texts {
    texts: Vec<String>,
    /// `texts` as an array, made again only when a text was added.
    array: Option<ArrayRef>,
}

impl Texts {
    fn add(&mut self, text: String) -> i32 {
        let k = i32::try_from(self.texts.len()).expect("fewer than 2^31 texts in a spool");
        self.texts.push(text);
        self.array = None;
        k
    }

    /// Every text met so far, at its key.
    fn array(&mut self) -> ArrayRef {
        self.array
            .get_or_insert_with(|| Arc::new(StringArray::from_iter_values(&self.texts)))
            .clone()
    }
}

/// The texts of one [`CODED`] column, found by the number each renders (a
/// status, a capture's index, a qtype).
#[derive(Default)]
pub(super) struct Codes {
    /// The key of each number under 256; -1 for none yet.
    small: Vec<i32>,
    large: HashMap<u32, i32, foldhash::fast::RandomState>,
    texts: Texts,
}

impl Codes {
    pub(super) fn key(&mut self, code: u32, text: impl FnOnce() -> String) -> i32 {
        if self.small.is_empty() {
            self.small = vec![-1; 256];
        }
        let slot = usize::try_from(code).ok().filter(|&c| c < self.small.len());
        let known = match slot {
            Some(c) => Some(self.small[c]).filter(|k| *k >= 0),
            None => self.large.get(&code).copied(),
        };
        if let Some(k) = known {
            return k;
        }
        let k = self.texts.add(text());
        match slot {
            Some(c) => self.small[c] = k,
            None => {
                self.large.insert(code, k);
            }
        }
        k
    }

    /// The key of a protocol number (`Display`: its mnemonic, or its RFC
    /// 3597 form when it has none).
    pub(super) fn number(&mut self, v: impl Mnemonic + Into<u32>) -> i32 {
        self.key(v.into(), || v.to_string())
    }
}

/// The texts of an address column (`client_ip`, `server_ip`): a spool's
/// rows come from far fewer addresses than rows, and a lookup is cheaper
/// than writing the text again.
#[derive(Default)]
pub(super) struct Addresses {
    keys: HashMap<IpAddr, i32, foldhash::fast::RandomState>,
    texts: Texts,
}

impl Addresses {
    pub(super) fn key(&mut self, ip: IpAddr) -> i32 {
        if let Some(&k) = self.keys.get(&ip) {
            return k;
        }
        // once per distinct address a spool: std's form is the same text
        let k = self.texts.add(ip.to_string());
        self.keys.insert(ip, k);
        k
    }
}

/// The most addresses a [`Memo`] keeps in each of its maps before that map
/// starts over.
const MEMO_MAX: usize = 1 << 17;

/// `map`, emptied first when it is full and `key` is not in it.
fn bounded<V>(map: &mut HashMap<IpAddr, V, foldhash::fast::RandomState>, key: &IpAddr) {
    if map.len() >= MEMO_MAX && !map.contains_key(key) {
        map.clear();
    }
}

/// Lookups and pseudonyms already made, kept across the batches of one
/// spool: a capture holds far fewer distinct addresses than rows. Cleared
/// when it reaches `MEMO_MAX` addresses, so memory stays bounded. Also the
/// texts of the [`CODED`] columns (forgotten each time the spool is
/// written), a column of nulls of each type that the batches' all-null
/// columns share, and the responses found malformed as their rows were
/// built.
#[derive(Default)]
pub struct Memo {
    places: HashMap<IpAddr, enrich::Record, foldhash::fast::RandomState>,
    pseudonyms: HashMap<IpAddr, IpAddr, foldhash::fast::RandomState>,
    pub(super) codes: [Codes; 8],
    /// `client_ip`, `server_ip`.
    pub(super) addresses: [Addresses; 2],
    nulls: HashMap<DataType, ArrayRef>,
    /// By capture: responses whose records were checked as they were
    /// rendered (`DnsMessage::unchecked`) and found malformed, by reason.
    malformed: Vec<MalformedCounts>,
}

impl Memo {
    /// The verdict on an unchecked response of `capture` whose records were
    /// just rendered: `fault`, what rendering stopped at, and `cut`, whether
    /// the capture cut it short. Counts it if it is malformed, which it
    /// returns.
    pub(super) fn checked(&mut self, capture: u32, fault: Option<DecodeError>, cut: bool) -> bool {
        let Some(reason) = Malformed::of(fault, cut) else {
            return false;
        };
        let c = capture as usize;
        if self.malformed.len() <= c {
            self.malformed.resize(c + 1, MalformedCounts::default());
        }
        self.malformed[c][reason] += 1;
        true
    }

    /// The responses found malformed as their rows were built, by capture
    /// (see [`Memo::checked`]); forgets them.
    pub fn take_malformed(&mut self) -> Vec<MalformedCounts> {
        std::mem::take(&mut self.malformed)
    }

    pub(super) fn place(&mut self, e: &Enricher, ip: IpAddr) -> Result<&enrich::Record> {
        bounded(&mut self.places, &ip);
        Ok(match self.places.entry(ip) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(e.lookup(ip)?),
        })
    }

    /// The record of an ECS subnet's network address (`198.51.100.0/24`).
    pub(super) fn subnet_place(
        &mut self,
        e: &Enricher,
        subnet: &str,
    ) -> Result<Option<&enrich::Record>> {
        match subnet.split_once('/').and_then(|(a, _)| a.parse().ok()) {
            Some(ip) => self.place(e, ip).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn pseudonym(&mut self, a: &Anonymizer, ip: IpAddr) -> IpAddr {
        bounded(&mut self.pseudonyms, &ip);
        *self.pseudonyms.entry(ip).or_insert_with(|| a.map(ip))
    }

    /// The texts of the [`CODED`] columns, at their places in `transactions`
    /// (`None` for the other columns): `texts[c]` at `key` is the text of
    /// key `key` in column `c` of every batch built since [`Memo::forget_texts`].
    pub fn texts(&mut self) -> Vec<Option<ArrayRef>> {
        TRANSACTIONS
            .fields()
            .iter()
            .map(|f| {
                let name = f.name().as_str();
                let texts = match CODED.iter().position(|c| *c == name)? {
                    i if i < self.codes.len() => &mut self.codes[i].texts,
                    i => &mut self.addresses[i - self.codes.len()].texts,
                };
                Some(texts.array())
            })
            .collect()
    }

    /// Forgets the coded columns' texts: call when no spooled batch
    /// refers to them (a spool that was just written), so that they never
    /// outgrow a spool.
    pub fn forget_texts(&mut self) {
        self.codes = Default::default();
        self.addresses = Default::default();
    }

    /// `column`, or a slice of a shared column of nulls when it holds
    /// nothing else: a spool's batches hold most of the enrichment, EDNS
    /// option and dnstap columns (4 to 8 bytes a row each) once, not once
    /// a batch.
    pub(super) fn share_nulls(&mut self, column: ArrayRef) -> ArrayRef {
        let n = column.len();
        if n == 0 || column.null_count() != n {
            return column;
        }
        let shared = self
            .nulls
            .entry(column.data_type().clone())
            .or_insert_with(|| new_null_array(column.data_type(), n.max(SHARED_NULL_ROWS)));
        if shared.len() < n {
            *shared = new_null_array(column.data_type(), n);
        }
        shared.slice(0, n)
    }
}

/// Rows of a column of nulls that a [`Memo`] shares out.
const SHARED_NULL_ROWS: usize = 8_192;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_keys_and_texts() {
        let mut memo = Memo::default();
        let q = |memo: &mut Memo, t: u16| memo.codes[QTYPE].number(crate::codes::Qtype(t));
        let keys: Vec<i32> = [1, 28, 65280, 1, 65280, 255]
            .into_iter()
            .map(|t| q(&mut memo, t))
            .collect();
        assert_eq!(keys, [0, 1, 2, 0, 2, 3]);
        let ip: IpAddr = "2001:db8::53".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let ips = [ip, v4, ip].map(|a| memo.addresses[SERVER].key(a));
        assert_eq!(ips, [0, 1, 0]);

        let texts = memo.texts();
        let at = |name: &str| TRANSACTIONS.index_of(name).unwrap();
        let text = |c: usize, k: usize| {
            let a = texts[c].as_ref().unwrap();
            a.as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(k)
                .to_string()
        };
        let qtypes: Vec<String> = (0..4).map(|k| text(at(schema::QTYPE), k)).collect();
        assert_eq!(qtypes, ["A", "AAAA", "TYPE65280", "ANY"]);
        assert_eq!(text(at(schema::SERVER_IP), 0), "2001:db8::53");
        assert_eq!(text(at(schema::SERVER_IP), 1), "192.0.2.1");
        assert!(texts[at(schema::QNAME)].is_none());
        assert_eq!(texts.iter().flatten().count(), CODED.len());

        memo.forget_texts();
        assert_eq!(q(&mut memo, 65280), 0);
    }
}
