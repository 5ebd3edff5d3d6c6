//! The only column list of the dataset: name, type, nullability and one doc
//! line each, for `transactions` (SPEC §4) and `captures` (SPEC §3).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

/// Bumped whenever a column is renamed or changes meaning.
pub const SCHEMA_VERSION: &str = "1";

pub const TS: &str = "ts";
pub const RESPONSE_TS: &str = "response_ts";
pub const RESPONSE_TIME_MS: &str = "response_time_ms";
pub const STATUS: &str = "status";
pub const QUERY_COUNT: &str = "query_count";
pub const CLIENT_IP: &str = "client_ip";
pub const SERVER_IP: &str = "server_ip";
pub const CLIENT_PORT: &str = "client_port";
pub const SERVER_PORT: &str = "server_port";
pub const TRANSPORT: &str = "transport";
pub const IP_VERSION: &str = "ip_version";
pub const ID: &str = "id";
pub const QNAME: &str = "qname";
pub const QTYPE: &str = "qtype";
pub const QCLASS: &str = "qclass";
pub const TLD: &str = "tld";
pub const REG_DOMAIN: &str = "reg_domain";
pub const OPCODE: &str = "opcode";
pub const RCODE: &str = "rcode";
pub const ANSWERS: &str = "answers";
pub const AUTHORITY: &str = "authority";
pub const ADDITIONAL: &str = "additional";
pub const CAPTURE: &str = "capture";
pub const QUERY_FRAME: &str = "query_frame";
pub const RESPONSE_FRAME: &str = "response_frame";
pub const DATE: &str = "date";
pub const SOURCE: &str = "source";
pub const DNSTAP_TYPE: &str = "dnstap_type";
pub const SERVER_IDENTITY: &str = "server_identity";

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The struct of one resource record in `answers`.
pub fn rr_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("ttl", DataType::Int64, true),
        Field::new("data", DataType::Utf8, true),
    ])
}

/// `(name, type, nullable, doc)` of every `transactions` column, in file order.
pub fn transaction_columns() -> Vec<(&'static str, DataType, bool, &'static str)> {
    let rr_list = DataType::List(Arc::new(Field::new(
        "element",
        DataType::Struct(rr_fields()),
        true,
    )));
    vec![
        (TS, ts_type(), false, "first query's capture time (dnstap: the time logged for the query); the response's when no query was seen"),
        (RESPONSE_TS, ts_type(), true, "first response's capture time, null if none"),
        (RESPONSE_TIME_MS, DataType::Float64, true, "response_ts - ts in ms (µs precision or better); null unless answered; never negative"),
        (STATUS, DataType::Utf8, false, "answered | unanswered (no response within the match timeout or before the input ended) | response_only (no matching query; a dnstap response logged with its query's time is answered)"),
        (QUERY_COUNT, DataType::Int32, false, "copies of the query seen before the response (1 = no retransmission, 0 = response_only; 1 for a dnstap response paired by its logged query time)"),
        (CLIENT_IP, DataType::Utf8, false, "address of the side that sent the query, presentation form"),
        (SERVER_IP, DataType::Utf8, false, "address of the side the query was sent to"),
        (CLIENT_PORT, DataType::Int32, false, "client's port"),
        (SERVER_PORT, DataType::Int32, false, "server's port"),
        (TRANSPORT, DataType::Utf8, false, "udp or tcp; from dnstap also dot, doh, doq, dnscrypt-udp, dnscrypt-tcp (unknown when the log names none)"),
        (IP_VERSION, DataType::Int32, false, "4 or 6"),
        (ID, DataType::Int32, false, "DNS transaction id"),
        (QNAME, DataType::Utf8, true, "first question, lower-cased, no trailing dot (the root is '.'), odd bytes as \\DDD; null if unreadable"),
        (QTYPE, DataType::Utf8, true, "question type mnemonic (A, HTTPS, TYPE65280)"),
        (QCLASS, DataType::Utf8, true, "question class mnemonic (IN, CH, CLASS3)"),
        (TLD, DataType::Utf8, true, "last label of qname; null for the root"),
        (REG_DOMAIN, DataType::Utf8, true, "registered domain (eTLD+1) by the Public Suffix List; null when qname is itself a public suffix"),
        (OPCODE, DataType::Utf8, false, "QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO or OPCODEn"),
        (RCODE, DataType::Utf8, true, "response code incl. EDNS extended rcodes (NOERROR, NXDOMAIN, SERVFAIL, BADCOOKIE...); null without response"),
        ("rd", DataType::Boolean, false, "recursion desired, from the query (the response when no query)"),
        ("cd", DataType::Boolean, false, "checking disabled, from the query (the response when no query)"),
        ("aa", DataType::Boolean, true, "authoritative answer, from the response; null without response"),
        ("tc", DataType::Boolean, true, "truncated, from the response; null without response"),
        ("ra", DataType::Boolean, true, "recursion available, from the response; null without response"),
        ("ad", DataType::Boolean, true, "authentic data, from the response; null without response"),
        ("answer_count", DataType::Int32, true, "ANCOUNT of the response"),
        ("authority_count", DataType::Int32, true, "NSCOUNT of the response"),
        ("additional_count", DataType::Int32, true, "ARCOUNT of the response"),
        ("query_size", DataType::Int32, true, "DNS message length of the query in bytes"),
        ("response_size", DataType::Int32, true, "DNS message length of the response in bytes"),
        ("edns_udp_size", DataType::Int32, true, "UDP payload size of the query's OPT record; null when it has none"),
        ("edns_do", DataType::Boolean, true, "DNSSEC OK bit of the query's OPT record; null when it has none"),
        ("edns_version", DataType::Int32, true, "EDNS version of the query's OPT record (the response's when no query)"),
        ("ecs", DataType::Utf8, true, "EDNS Client Subnet of the query, e.g. 198.51.100.0/24"),
        ("ecs_scope", DataType::Int32, true, "EDNS Client Subnet scope prefix length set by the response"),
        ("client_cookie", DataType::Utf8, true, "DNS Cookie (RFC 7873) client cookie of the query, hex"),
        ("server_cookie", DataType::Utf8, true, "DNS Cookie server cookie of the response, hex"),
        ("nsid", DataType::Utf8, true, "NSID (RFC 5001) of the response: text when printable, else hex"),
        ("padding", DataType::Int32, true, "length of the EDNS Padding option (RFC 7830) of the response, else of the query"),
        ("ede_code", DataType::Int32, true, "Extended DNS Error info code of the response (RFC 8914)"),
        ("ede_text", DataType::Utf8, true, "Extended DNS Error extra text of the response"),
        (ANSWERS, rr_list.clone(), true, "the response's answer section: list of {name, type, ttl, data}, data in presentation form"),
        (AUTHORITY, rr_list.clone(), true, "the response's authority section, as answers"),
        (ADDITIONAL, rr_list, true, "the response's additional section without the OPT record, as answers"),
        ("malformed", DataType::Boolean, false, "a message of this transaction could be read only in part"),
        (CAPTURE, DataType::Utf8, false, "file the query (or lone response) came from"),
        (QUERY_FRAME, DataType::Int64, true, "1-based frame number of the query in that file, as Wireshark numbers them (dnstap: the message's number in the log); null when no query message was seen"),
        (RESPONSE_FRAME, DataType::Int64, true, "1-based frame number of the response in the file it came from (dnstap: message number)"),
        ("client_continent", DataType::Utf8, true, "continent code (AF, AN, AS, EU, NA, OC, SA) of the client address by --geoip; null without a database or for private, loopback and documentation ranges"),
        ("client_country", DataType::Utf8, true, "ISO 3166-1 country code of the client address by --geoip (the address before --anonymize)"),
        ("client_asn", DataType::Int64, true, "autonomous system number of the client address by --asn"),
        ("client_as_org", DataType::Utf8, true, "organisation of the client's autonomous system by --asn"),
        ("server_continent", DataType::Utf8, true, "continent code of the server address by --geoip"),
        ("server_country", DataType::Utf8, true, "ISO 3166-1 country code of the server address by --geoip"),
        ("server_asn", DataType::Int64, true, "autonomous system number of the server address by --asn"),
        ("server_as_org", DataType::Utf8, true, "organisation of the server's autonomous system by --asn"),
        ("ecs_continent", DataType::Utf8, true, "continent code of the EDNS Client Subnet's network by --geoip"),
        ("ecs_country", DataType::Utf8, true, "ISO 3166-1 country code of the EDNS Client Subnet's network by --geoip"),
        ("ecs_asn", DataType::Int64, true, "autonomous system number of the EDNS Client Subnet's network by --asn"),
        ("ecs_as_org", DataType::Utf8, true, "organisation of the EDNS Client Subnet's autonomous system by --asn"),
        ("tunnel", DataType::Utf8, true, "encapsulations peeled off to reach the query (the response when no query), outermost first: vxlan, geneve, gtp-u, gre, erspan, mpls, pppoe, ip-in-ip, joined by / (geneve/vxlan); null when none. client_ip and server_ip are the inner addresses"),
        (SOURCE, DataType::Utf8, true, "pcap (a packet capture) or dnstap (a server's own log); null in files written before dnstap was read, which are all pcap"),
        (DNSTAP_TYPE, DataType::Utf8, true, "dnstap message type of the response (of the query when no response): CLIENT_RESPONSE, RESOLVER_QUERY, AUTH_RESPONSE...; null for pcap rows"),
        (SERVER_IDENTITY, DataType::Utf8, true, "the logging server's dnstap identity (e.g. its host name); null for pcap rows and servers that send none"),
    ]
}

/// The Arrow schema of a column list.
fn schema_of(columns: Vec<(&'static str, DataType, bool, &'static str)>) -> SchemaRef {
    let fields: Vec<Field> = columns
        .into_iter()
        .map(|(n, t, null, _)| Field::new(n, t, null))
        .collect();
    Arc::new(Schema::new(fields))
}

pub static TRANSACTIONS: LazyLock<SchemaRef> = LazyLock::new(|| schema_of(transaction_columns()));

/// The `&'static` name of the `transactions` or `captures` column called
/// `name`. It panics for a name neither table has: a builder naming a column
/// that does not exist is a bug.
pub fn column_name(name: &str) -> &'static str {
    let tables: [&'static Schema; 2] = [&TRANSACTIONS, &CAPTURES];
    tables
        .into_iter()
        .flat_map(|t| t.fields().iter())
        .map(|f| f.name().as_str())
        .find(|n| *n == name)
        .unwrap_or_else(|| panic!("{name} is not a column"))
}

/// A batch of `schema` from columns given by name, in any order: each
/// column of the schema exactly once. Builders bind their arrays this way,
/// so that two columns of one type cannot trade places unnoticed.
pub fn bind(schema: &SchemaRef, named: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let given = named.len();
    let mut by_name: HashMap<&str, ArrayRef> = HashMap::with_capacity(given);
    for (name, array) in named {
        if by_name.insert(name, array).is_some() {
            return Err(ArrowError::SchemaError(format!(
                "column {name} built twice"
            )));
        }
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            by_name
                .remove(f.name().as_str())
                .ok_or_else(|| ArrowError::SchemaError(format!("column {} not built", f.name())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(extra) = by_name.keys().next() {
        return Err(ArrowError::SchemaError(format!("{extra} is not a column")));
    }
    RecordBatch::try_new(schema.clone(), columns)
}

/// `(name, type, nullable, doc)` of every `captures` column.
pub fn capture_columns() -> Vec<(&'static str, DataType, bool, &'static str)> {
    vec![
        ("path", DataType::Utf8, false, "capture file as given on the command line"),
        ("sha256", DataType::Utf8, false, "SHA-256 of the capture's (decompressed) content; a capture already in the dataset is not ingested again"),
        ("format", DataType::Utf8, false, "pcap, pcapng or dnstap, with compression"),
        ("file_size", DataType::Int64, false, "bytes on disk"),
        ("first_ts", ts_type(), true, "first packet's capture time"),
        ("last_ts", ts_type(), true, "last packet's capture time"),
        ("packets", DataType::Int64, false, "packet records read (dnstap: messages)"),
        ("dns_messages", DataType::Int64, false, "DNS messages decoded"),
        ("malformed", DataType::Int64, false, "DNS messages read only in part, or too short to read"),
        ("malformed_truncated", DataType::Int64, false, "malformed: a section ends past the message (counts larger than the message, truncated RDATA)"),
        ("malformed_bad_label", DataType::Int64, false, "malformed: a label type other than a plain label or a pointer (a length over 63)"),
        ("malformed_bad_pointer", DataType::Int64, false, "malformed: a compression pointer out of bounds or in a loop"),
        ("malformed_name_too_long", DataType::Int64, false, "malformed: a name over 255 octets"),
        ("malformed_bad_rdata", DataType::Int64, false, "malformed: RDATA (or an EDNS option) that does not fit its type's format"),
        ("malformed_too_short", DataType::Int64, false, "malformed: a payload on a DNS port shorter than a DNS header, dropped"),
        ("malformed_cut", DataType::Int64, false, "malformed: a UDP payload shorter than its UDP length (snaplen cut, bad length)"),
        ("not_decoded", DataType::Int64, false, "DNS-port packets not decoded: unknown link types, IP fragments, bad headers (dnstap: messages without their DNS bytes or time)"),
        ("answered", DataType::Int64, false, "transactions with status answered whose query came from this file"),
        ("unanswered", DataType::Int64, false, "transactions with status unanswered"),
        ("response_only", DataType::Int64, false, "transactions with status response_only"),
        ("problem", DataType::Utf8, true, "why reading stopped early (cut off, corrupt record), with the byte offset"),
        ("ingested_at", ts_type(), false, "when the ingest ran"),
        ("geoip_db", DataType::Utf8, true, "the --geoip database that enriched this capture's rows: file name, type and build date"),
        ("asn_db", DataType::Utf8, true, "the --asn database that enriched this capture's rows: file name, type and build date"),
        ("anonymization", DataType::Utf8, true, "the --anonymize method, its parameters, key id (never the key) and what it applied to; null when addresses are as captured"),
    ]
}

pub static CAPTURES: LazyLock<SchemaRef> = LazyLock::new(|| schema_of(capture_columns()));

/// `batch` with the columns of `schema`, in its order: a column the batch
/// lacks (a file written before the column existed) is all null.
pub fn conform(
    batch: &arrow::array::RecordBatch,
    schema: &SchemaRef,
) -> Result<arrow::array::RecordBatch, arrow::error::ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow::compute::cast(c, f.data_type()),
            None => Ok(arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    arrow::array::RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::dns::Malformed;

    fn int_column() -> ArrayRef {
        Arc::new(arrow::array::Int32Array::from(vec![1, 2]))
    }

    #[test]
    fn columns_bind_by_name_each_once() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Int32, false),
        ]));
        let b: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![3, 4]));
        // any order: each array lands in the column of its name
        let batch = bind(&schema, vec![("b", b.clone()), ("a", int_column())]).unwrap();
        assert_eq!(batch.column(1), &b);
        assert_eq!(batch.column(0), &int_column());
        let missing = bind(&schema, vec![("a", int_column())]).unwrap_err();
        assert!(
            missing.to_string().contains("column b not built"),
            "{missing}"
        );
        let twice = vec![("a", int_column()), ("a", int_column()), ("b", b.clone())];
        assert!(bind(&schema, twice)
            .unwrap_err()
            .to_string()
            .contains("built twice"));
        let extra = vec![("a", int_column()), ("b", b), ("c", int_column())];
        assert!(bind(&schema, extra)
            .unwrap_err()
            .to_string()
            .contains("c is not a column"));
    }

    #[test]
    fn column_names_are_the_tables_own() {
        assert_eq!(column_name("client_asn"), "client_asn");
        assert_eq!(column_name("malformed_cut"), "malformed_cut");
        assert!(std::panic::catch_unwind(|| column_name("client_asm")).is_err());
    }

    #[test]
    fn malformed_columns_follow_the_reasons() {
        // one column per reason, in the reasons' order
        let names: Vec<&str> = capture_columns().iter().map(|c| c.0).collect();
        let at = names.iter().position(|n| *n == "malformed").unwrap() + 1;
        for (i, m) in Malformed::ALL.iter().enumerate() {
            assert_eq!(names[at + i], format!("malformed_{}", m.name()));
        }
        assert_eq!(names[at + Malformed::ALL.len()], "not_decoded");
    }
}
