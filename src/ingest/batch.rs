//! Ingest stage 5: `Transaction`s → Arrow `RecordBatch` in the schema of
//! `dataset::schema`, its columns bound by name.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;

use arrow::array::builder::ArrayBuilder as _;
use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListArray, RecordBatch,
    StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};

use crate::anonymize::Anonymizer;
use crate::codes::Mnemonic;
use crate::dataset::schema::{self, rr_fields};
use crate::enrich::{self, Enricher};
use crate::error::Result;
use crate::ingest::correlate::Transaction;
use crate::ingest::dns::{DecodeError, DnsMessage, Rr};

mod memo;

use memo::*;
pub use memo::{Memo, CODED, SPOOLED};

/// Last label of a lower-cased qname; `None` for the root.
pub fn tld(qname: &str) -> Option<&str> {
    if qname == "." || qname.is_empty() {
        return None;
    }
    // an escaped dot (`\.`) inside the last label is not a separator
    let bytes = qname.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes[i] == b'.'
            && !(i > 0 && bytes[i - 1] == b'\\' && !(i > 1 && bytes[i - 2] == b'\\'))
        {
            return Some(&qname[i + 1..]);
        }
    }
    Some(qname)
}

/// Registered domain (eTLD+1) by the Public Suffix List.
pub fn reg_domain(qname: &str) -> Option<&str> {
    if qname == "." || qname.contains('\\') {
        return None;
    }
    psl::domain_str(qname)
}

/// Appends a value's text without an intermediate `String`.
fn append_display(b: &mut StringBuilder, v: impl fmt::Display) {
    write!(b, "{v}").expect("writing to a string builder cannot fail");
    b.append_value("");
}

/// Appends a protocol number's mnemonic, or its RFC 3597 form when it has none.
fn append_code(b: &mut StringBuilder, v: impl Mnemonic) {
    match v.mnemonic() {
        Some(m) => b.append_value(m),
        None => append_display(b, v),
    }
}

fn ts_builder(n: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")
}

fn ip_version(ip: &IpAddr) -> i32 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

/// What rows are made with besides the transactions: the capture names
/// (`Observed::capture` indexes them), and the optional enrichment and
/// pseudonymisation of addresses.
#[derive(Debug, Default)]
pub struct Rows {
    pub captures: Vec<String>,
    pub enrich: Option<Arc<Enricher>>,
    pub anonymize: Option<Arc<Anonymizer>>,
}

impl Rows {
    pub fn plain(captures: Vec<String>) -> Rows {
        Rows {
            captures,
            ..Rows::default()
        }
    }
}

/// Continent, country, AS number and organisation of one address role.
struct Place {
    continent: StringBuilder,
    country: StringBuilder,
    asn: Int64Builder,
    as_org: StringBuilder,
}

impl Place {
    /// Builders for `n` rows; with room for the text when there is enrichment.
    fn new(n: usize, enriched: bool) -> Place {
        let k = usize::from(enriched);
        Place {
            continent: StringBuilder::with_capacity(n, 2 * n * k),
            country: StringBuilder::with_capacity(n, 2 * n * k),
            asn: Int64Builder::with_capacity(n),
            as_org: StringBuilder::with_capacity(n, 24 * n * k),
        }
    }

    fn append(&mut self, r: Option<&enrich::Record>) {
        self.continent
            .append_option(r.and_then(|r| r.continent.as_deref()));
        self.country
            .append_option(r.and_then(|r| r.country.as_deref()));
        self.asn.append_option(r.and_then(|r| r.asn));
        self.as_org
            .append_option(r.and_then(|r| r.as_org.as_deref()));
    }

    /// The four columns of `role` (`client`: `client_continent`, ...).
    fn finish(mut self, role: &str) -> [(&'static str, ArrayRef); 4] {
        let name = |column: &str| schema::column_name(&format!("{role}_{column}"));
        [
            (name("continent"), Arc::new(self.continent.finish())),
            (name("country"), Arc::new(self.country.finish())),
            (name("asn"), Arc::new(self.asn.finish())),
            (name("as_org"), Arc::new(self.as_org.finish())),
        ]
    }
}

/// Builds one batch from transactions.
/// Each transaction is dropped as soon as its row is appended, while its
/// memory is still in cache (dropping them all afterwards cost 5% of an ingest).
pub fn build<I>(txs: I, rows: &Rows, memo: &mut Memo) -> Result<RecordBatch>
where
    I: IntoIterator<Item = Transaction>,
    I::IntoIter: ExactSizeIterator,
{
    let txs = txs.into_iter();
    let n = txs.len();
    let captures = &rows.captures;
    let places = rows.enrich.as_deref();
    let anon = rows.anonymize.as_deref();
    let anon_servers = anon.is_some_and(|a| a.servers);
    let [mut client_place, mut server_place, mut ecs_place] =
        [0; 3].map(|_| Place::new(n, places.is_some()));
    let mut tunnel = StringBuilder::new();
    let mut source = Int32Builder::with_capacity(n);
    let mut dnstap_type = StringBuilder::new();
    let mut identity = StringBuilder::new();
    // the name of the last server seen (a batch holds one or a few)
    let mut server: (u32, Option<Arc<str>>) = (0, None);
    let mut ts = ts_builder(n);
    let mut response_ts = ts_builder(n);
    let mut rtt = Float64Builder::with_capacity(n);
    let mut status = Int32Builder::with_capacity(n);
    let mut query_count = Int32Builder::with_capacity(n);
    let mut client_ip = Int32Builder::with_capacity(n);
    let mut server_ip = Int32Builder::with_capacity(n);
    let mut client_port = Int32Builder::with_capacity(n);
    let mut server_port = Int32Builder::with_capacity(n);
    let mut transport = Int32Builder::with_capacity(n);
    let mut ipv = Int32Builder::with_capacity(n);
    let mut id = Int32Builder::with_capacity(n);
    let mut qname = StringBuilder::with_capacity(n, n * 24);
    let mut qtype = Int32Builder::with_capacity(n);
    let mut qclass = Int32Builder::with_capacity(n);
    let mut tld_b = StringBuilder::with_capacity(n, n * 4);
    let mut reg = StringBuilder::with_capacity(n, n * 16);
    let mut opcode = Int32Builder::with_capacity(n);
    let mut rcode = Int32Builder::with_capacity(n);
    let mut bools: Vec<BooleanBuilder> = (0..6).map(|_| BooleanBuilder::with_capacity(n)).collect();
    let mut counts: Vec<Int32Builder> = (0..3).map(|_| Int32Builder::with_capacity(n)).collect();
    let mut qsize = Int32Builder::with_capacity(n);
    let mut rsize = Int32Builder::with_capacity(n);
    let mut edns_size = Int32Builder::with_capacity(n);
    let mut edns_do = BooleanBuilder::with_capacity(n);
    let mut edns_version = Int32Builder::with_capacity(n);
    let mut ecs = StringBuilder::new();
    let mut ecs_scope = Int32Builder::with_capacity(n);
    let mut client_cookie = StringBuilder::new();
    let mut server_cookie = StringBuilder::new();
    let mut nsid = StringBuilder::new();
    let mut padding = Int32Builder::with_capacity(n);
    let mut ede_code = Int32Builder::with_capacity(n);
    let mut ede_text = StringBuilder::new();
    let mut sections = Sections([0; 3].map(|_| RrList::new(n)));
    let mut malformed = BooleanBuilder::with_capacity(n);
    let mut capture = Int32Builder::with_capacity(n);
    let mut qframe = Int64Builder::with_capacity(n);
    let mut rframe = Int64Builder::with_capacity(n);

    for t in txs {
        let first = t.first();
        let q = t.query.as_ref();
        let r = t.response.as_ref();
        let query_ts = t.query_ts_ns();
        ts.append_value(query_ts.unwrap_or(first.ts_ns).div_euclid(1000));
        response_ts.append_option(r.map(|r| r.ts_ns.div_euclid(1000)));
        match (query_ts, r) {
            (Some(qt), Some(r)) => {
                rtt.append_value((r.ts_ns.saturating_sub(qt).max(0)) as f64 / 1e6)
            }
            _ => rtt.append_null(),
        }
        let st = t.status;
        status.append_value(memo.codes[STATUS].key(st as u32, || st.as_str().into()));
        query_count.append_value(t.query_count as i32);
        // client = the side that sent the query
        let (cip, cport, sip, sport) = match q {
            Some(q) => (q.src, q.sport, q.dst, q.dport),
            None => (first.dst, first.dport, first.src, first.sport),
        };
        if let Some(e) = places {
            client_place.append(Some(memo.place(e, cip)?));
            server_place.append(Some(memo.place(e, sip)?));
        } else {
            client_place.append(None);
            server_place.append(None);
        }
        let (shown_cip, shown_sip) = match anon {
            Some(a) => {
                let sip = if anon_servers {
                    memo.pseudonym(a, sip)
                } else {
                    sip
                };
                (memo.pseudonym(a, cip), sip)
            }
            None => (cip, sip),
        };
        client_ip.append_value(memo.addresses[CLIENT].key(shown_cip));
        server_ip.append_value(memo.addresses[SERVER].key(shown_sip));
        client_port.append_value(cport as i32);
        server_port.append_value(sport as i32);
        let tr = first.transport;
        transport.append_value(memo.codes[TRANSPORT].key(tr as u32, || tr.as_str().into()));
        ipv.append_value(ip_version(&cip));
        id.append_value(first.msg.id as i32);
        let question = q
            .and_then(|q| q.msg.question.as_ref())
            .or_else(|| r.and_then(|r| r.msg.question.as_ref()));
        match question {
            Some(qu) => {
                qname.append_value(qu.qname.as_str());
                qtype.append_value(memo.codes[QTYPE].number(qu.qtype));
                qclass.append_value(memo.codes[QCLASS].number(qu.qclass));
                tld_b.append_option(tld(&qu.qname));
                reg.append_option(reg_domain(&qu.qname));
            }
            None => {
                qname.append_null();
                qtype.append_null();
                qclass.append_null();
                tld_b.append_null();
                reg.append_null();
            }
        }
        opcode.append_value(memo.codes[OPCODE].number(first.msg.flags.opcode()));
        match r {
            Some(r) => rcode.append_value(memo.codes[RCODE].number(r.msg.rcode)),
            None => rcode.append_null(),
        }
        bools[0].append_value(first.msg.flags.rd());
        bools[1].append_value(first.msg.flags.cd());
        bools[2].append_option(r.map(|r| r.msg.flags.aa()));
        bools[3].append_option(r.map(|r| r.msg.flags.tc()));
        bools[4].append_option(r.map(|r| r.msg.flags.ra()));
        bools[5].append_option(r.map(|r| r.msg.flags.ad()));
        counts[0].append_option(r.map(|r| r.msg.ancount as i32));
        counts[1].append_option(r.map(|r| r.msg.nscount as i32));
        counts[2].append_option(r.map(|r| r.msg.arcount as i32));
        qsize.append_option(q.map(|q| q.msg.size as i32));
        rsize.append_option(r.map(|r| r.msg.size as i32));
        let qedns = q.and_then(|q| q.msg.edns.as_ref());
        edns_size.append_option(qedns.map(|e| e.udp_size as i32));
        edns_do.append_option(qedns.map(|e| e.do_bit));
        let redns = r.and_then(|r| r.msg.edns.as_ref());
        edns_version.append_option(qedns.or(redns).map(|e| e.version as i32));
        let subnet = qedns.and_then(|e| e.ecs.as_deref());
        match (places, subnet) {
            (Some(e), Some(s)) => ecs_place.append(memo.subnet_place(e, s)?),
            _ => ecs_place.append(None),
        }
        match (anon, subnet) {
            (Some(a), Some(s)) => ecs.append_option(crate::anonymize::map_subnet_with(s, |ip| {
                memo.pseudonym(a, ip)
            })),
            _ => ecs.append_option(subnet),
        }
        ecs_scope.append_option(redns.and_then(|e| e.ecs_scope.map(i32::from)));
        client_cookie.append_option(qedns.or(redns).and_then(|e| e.client_cookie.as_deref()));
        server_cookie.append_option(redns.and_then(|e| e.server_cookie.as_deref()));
        nsid.append_option(redns.and_then(|e| e.nsid.as_deref()));
        padding.append_option(
            redns
                .and_then(|e| e.padding)
                .or(qedns.and_then(|e| e.padding))
                .map(i32::from),
        );
        ede_code.append_option(redns.and_then(|e| e.ede_code.map(i32::from)));
        ede_text.append_option(redns.and_then(|e| e.ede_text.as_deref()));
        let fault = sections.append(r.map(|r| &*r.msg));
        // an unchecked response's records are checked now, as they are rendered
        let r_malformed = r.is_some_and(|r| {
            if r.msg.unchecked {
                memo.checked(r.capture, fault, r.msg.cut)
            } else {
                r.msg.malformed
            }
        });
        malformed.append_value(q.is_some_and(|q| q.msg.malformed) || r_malformed);
        let cap = first.capture;
        capture.append_value(memo.codes[CAPTURE].key(cap, || captures[cap as usize].clone()));
        if first.tunnels.is_empty() {
            tunnel.append_null();
        } else {
            append_display(&mut tunnel, first.tunnels);
        }
        qframe.append_option(q.map(|q| q.frame as i64));
        rframe.append_option(r.map(|r| r.frame as i64));
        // the response's log entry says most (its type, and the query's time)
        match r.or(q).and_then(|o| o.logged.as_ref()) {
            Some(l) => {
                source.append_value(memo.codes[SOURCE].key(1, || "dnstap".into()));
                dnstap_type.append_value(&*l.kind.name());
                if server.0 != l.server {
                    server = (l.server, crate::ingest::dnstap::server_name(l.server));
                }
                identity.append_option(server.1.as_deref());
            }
            None => {
                source.append_value(memo.codes[SOURCE].key(0, || "pcap".into()));
                dnstap_type.append_null();
                identity.append_null();
            }
        }
    }

    let [mut rd, mut cd, mut aa, mut tc, mut ra, mut ad] =
        <[BooleanBuilder; 6]>::try_from(bools).expect("six flag builders");
    let [mut an, mut ns, mut ar] =
        <[Int32Builder; 3]>::try_from(counts).expect("three count builders");
    let [answers, authority, additional] = sections.0;
    // bound to the schema by name: the order here is free
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (schema::TS, Arc::new(ts.finish())),
        (schema::RESPONSE_TS, Arc::new(response_ts.finish())),
        (schema::RESPONSE_TIME_MS, Arc::new(rtt.finish())),
        (schema::STATUS, Arc::new(status.finish())),
        (schema::QUERY_COUNT, Arc::new(query_count.finish())),
        (schema::CLIENT_IP, Arc::new(client_ip.finish())),
        (schema::SERVER_IP, Arc::new(server_ip.finish())),
        (schema::CLIENT_PORT, Arc::new(client_port.finish())),
        (schema::SERVER_PORT, Arc::new(server_port.finish())),
        (schema::TRANSPORT, Arc::new(transport.finish())),
        (schema::IP_VERSION, Arc::new(ipv.finish())),
        (schema::ID, Arc::new(id.finish())),
        (schema::QNAME, Arc::new(qname.finish())),
        (schema::QTYPE, Arc::new(qtype.finish())),
        (schema::QCLASS, Arc::new(qclass.finish())),
        (schema::TLD, Arc::new(tld_b.finish())),
        (schema::REG_DOMAIN, Arc::new(reg.finish())),
        (schema::OPCODE, Arc::new(opcode.finish())),
        (schema::RCODE, Arc::new(rcode.finish())),
        ("rd", Arc::new(rd.finish())),
        ("cd", Arc::new(cd.finish())),
        ("aa", Arc::new(aa.finish())),
        ("tc", Arc::new(tc.finish())),
        ("ra", Arc::new(ra.finish())),
        ("ad", Arc::new(ad.finish())),
        ("answer_count", Arc::new(an.finish())),
        ("authority_count", Arc::new(ns.finish())),
        ("additional_count", Arc::new(ar.finish())),
        ("query_size", Arc::new(qsize.finish())),
        ("response_size", Arc::new(rsize.finish())),
        ("edns_udp_size", Arc::new(edns_size.finish())),
        ("edns_do", Arc::new(edns_do.finish())),
        ("edns_version", Arc::new(edns_version.finish())),
        ("ecs", Arc::new(ecs.finish())),
        ("ecs_scope", Arc::new(ecs_scope.finish())),
        ("client_cookie", Arc::new(client_cookie.finish())),
        ("server_cookie", Arc::new(server_cookie.finish())),
        ("nsid", Arc::new(nsid.finish())),
        ("padding", Arc::new(padding.finish())),
        ("ede_code", Arc::new(ede_code.finish())),
        ("ede_text", Arc::new(ede_text.finish())),
        (schema::ANSWERS, answers.finish()?),
        (schema::AUTHORITY, authority.finish()?),
        (schema::ADDITIONAL, additional.finish()?),
        ("malformed", Arc::new(malformed.finish())),
        (schema::CAPTURE, Arc::new(capture.finish())),
        (schema::QUERY_FRAME, Arc::new(qframe.finish())),
        (schema::RESPONSE_FRAME, Arc::new(rframe.finish())),
        ("tunnel", Arc::new(tunnel.finish())),
        (schema::SOURCE, Arc::new(source.finish())),
        (schema::DNSTAP_TYPE, Arc::new(dnstap_type.finish())),
        (schema::SERVER_IDENTITY, Arc::new(identity.finish())),
    ];
    for (role, place) in [
        ("client", client_place),
        ("server", server_place),
        ("ecs", ecs_place),
    ] {
        columns.extend(place.finish(role));
    }
    let columns = columns
        .into_iter()
        .map(|(name, c)| (name, memo.share_nulls(c)))
        .collect();
    Ok(schema::bind(&SPOOLED, columns)?)
}

/// The records of one section, for every row of a batch: a list of
/// `(name, type, ttl, data)` structs a row, null without a response.
struct RrList {
    offsets: Vec<i32>,
    valid: NullBufferBuilder,
    name: StringBuilder,
    rtype: StringBuilder,
    ttl: Int64Builder,
    data: StringBuilder,
}

impl RrList {
    fn new(n: usize) -> RrList {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        RrList {
            offsets,
            valid: NullBufferBuilder::new(n),
            name: StringBuilder::new(),
            rtype: StringBuilder::new(),
            ttl: Int64Builder::new(),
            data: StringBuilder::new(),
        }
    }

    fn push(&mut self, rr: Rr<'_>) {
        self.name.append_value(rr.name);
        append_code(&mut self.rtype, rr.rtype);
        self.ttl.append_value(i64::from(rr.ttl));
        self.data.append_value(rr.data);
    }

    /// Ends a row's list: null without a response.
    fn end_row(&mut self, valid: bool) {
        self.offsets.push(self.ttl.len() as i32);
        self.valid.append(valid);
    }

    fn finish(mut self) -> Result<ArrayRef> {
        let values = StructArray::try_new(
            rr_fields(),
            vec![
                Arc::new(self.name.finish()),
                Arc::new(self.rtype.finish()),
                Arc::new(self.ttl.finish()),
                Arc::new(self.data.finish()),
            ],
            None,
        )?;
        let field = Arc::new(Field::new("element", DataType::Struct(rr_fields()), true));
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::new(self.offsets.into()),
            Arc::new(values),
            self.valid.finish(),
        )?))
    }
}

/// The answer, authority and additional lists of a batch.
struct Sections([RrList; 3]);

impl Sections {
    /// Renders a response's records from its bytes into this row's three
    /// lists; `None` (no response) gives three nulls. Returns why its bytes
    /// could be read only in part (`DnsMessage::for_each_record`).
    fn append(&mut self, msg: Option<&DnsMessage>) -> Option<DecodeError> {
        let fault = msg
            .and_then(|m| m.for_each_record(&mut |section, rr| self.0[section as usize].push(rr)));
        for list in &mut self.0 {
            list.end_row(msg.is_some());
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::correlate::{Observed, Status};
    use crate::ingest::dns::{self, Malformed};
    use crate::ingest::link::Transport;
    use arrow::array::AsArray;

    /// A response to `example.test A` with one A record of `rdlength`
    /// octets, its bytes kept and its records not checked (as the ingest
    /// decodes one that came over UDP), seen in capture `capture`.
    fn unchecked_response(rdlength: u8, capture: u32) -> Transaction {
        let mut wire = vec![0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        wire.extend(b"\x07example\x04test\x00\x00\x01\x00\x01");
        wire.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, rdlength]);
        wire.extend((0..rdlength).map(|i| 192 + i));
        let mut msg = dns::decode(&wire, false).unwrap();
        assert!(msg.unchecked && !msg.malformed);
        msg.wire = Some(wire.into());
        let at = |ip: &str| ip.parse().unwrap();
        Transaction {
            status: Status::ResponseOnly,
            query: None,
            response: Some(Observed {
                ts_ns: 1_700_000_000_000_000_000,
                capture,
                frame: 1,
                src: at("192.0.2.53"),
                dst: at("192.0.2.1"),
                sport: 53,
                dport: 40000,
                transport: Transport::Udp,
                tunnels: Default::default(),
                msg: Box::new(msg),
                logged: None,
            }),
            query_count: 0,
        }
    }

    #[test]
    fn an_unchecked_response_is_judged_as_its_row_is_built() {
        let rows = Rows::plain(vec!["a.pcap".into(), "b.pcap".into()]);
        let mut memo = Memo::default();
        let txs = vec![unchecked_response(4, 0), unchecked_response(3, 1)];
        let batch = build(txs, &rows, &mut memo).unwrap();
        let malformed = batch.column_by_name("malformed").unwrap().as_boolean();
        assert_eq!((malformed.value(0), malformed.value(1)), (false, true));
        // the bad one is counted for its own capture, by its reason
        let counts = memo.take_malformed();
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[0], dns::MalformedCounts::default());
        assert_eq!(counts[1][Malformed::Decode(dns::DecodeError::BadRdata)], 1);
        assert_eq!(counts[1].total(), 1);
        assert!(memo.take_malformed().is_empty());
    }

    #[test]
    fn tld_and_registered_domain() {
        assert_eq!(tld("www.example.co.uk"), Some("uk"));
        assert_eq!(tld("."), None);
        assert_eq!(tld("localhost"), Some("localhost"));
        assert_eq!(reg_domain("www.example.co.uk"), Some("example.co.uk"));
        assert_eq!(reg_domain("co.uk"), None);
        assert_eq!(reg_domain("a.b.example.test"), Some("example.test"));
    }
}
