use super::*;
use crate::codes::{Qclass, Qtype, Rcode};
use crate::ingest::dns::Flags;

fn obs(ts_ms: i64, qr: bool, id: u16, name: &str) -> Observed {
    let (c, s): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.53".parse().unwrap());
    let (src, dst, sport, dport) = if qr {
        (s, c, 53, 4000)
    } else {
        (c, s, 4000, 53)
    };
    Observed {
        ts_ns: ts_ms * 1_000_000,
        capture: 0,
        frame: ts_ms as u64,
        src,
        dst,
        sport,
        dport,
        transport: Transport::Udp,
        tunnels: Default::default(),
        msg: Box::new(DnsMessage {
            id,
            flags: Flags(if qr { 0x8180 } else { 0x0100 }),
            rcode: Rcode(0),
            qdcount: 1,
            ancount: 0,
            nscount: 0,
            arcount: 0,
            question: Some(Question {
                qname: name.into(),
                qtype: Qtype::A,
                qclass: Qclass(1),
            }),
            edns: None,
            wire: None,
            more: vec![],
            size: 30,
            malformed: false,
            error: None,
            cut: false,
            unchecked: false,
        }),
        logged: None,
    }
}

/// A query as a dnstap log gives it (CLIENT_QUERY).
fn logged_query(ts_ms: i64, id: u16) -> Observed {
    let mut o = obs(ts_ms, false, id, "a.example");
    o.logged = Some(Logged {
        kind: crate::ingest::dnstap::MessageType(5),
        server: 0,
        query_ts_ns: None,
    });
    o
}

/// A response as a dnstap log gives it, with its query's time or not.
fn logged(ts_ms: i64, id: u16, query_ms: Option<i64>) -> Observed {
    let mut o = obs(ts_ms, true, id, "a.example");
    o.logged = Some(Logged {
        kind: crate::ingest::dnstap::MessageType(6),
        server: 0,
        query_ts_ns: query_ms.map(|q| q * 1_000_000),
    });
    o
}

#[test]
fn a_message_seen_twice_is_two_observations() {
    // the wire and a server's log each saw the query and its response
    let r = run(vec![
        obs(0, false, 7, "a.example"),
        logged_query(0, 7),
        obs(30, true, 7, "a.example"),
        logged(40, 7, None),
    ]);
    assert_eq!(
        r,
        vec![
            (Status::Answered, 1, Some(30)),
            (Status::Answered, 1, Some(40))
        ]
    );
}

#[test]
fn a_logged_response_pairs_by_its_query_time() {
    // its query logged too: paired with it, as a capture would be
    let r = run(vec![logged_query(0, 7), logged(40, 7, Some(1))]);
    assert_eq!(r, vec![(Status::Answered, 1, Some(40))]);
    // logged alone: answered all the same, timed from the logged query time
    let r = run(vec![logged(40, 7, Some(15))]);
    assert_eq!(r, vec![(Status::Answered, 1, Some(25))]);
    // without a query time (Unbound's CLIENT_RESPONSE) it stays alone
    let r = run(vec![logged(40, 7, None)]);
    assert_eq!(r, vec![(Status::ResponseOnly, 0, Some(0))]);
}

fn run(msgs: Vec<Observed>) -> Vec<(Status, u32, Option<i64>)> {
    let mut c = Correlator::new(10_000_000_000);
    for m in msgs {
        c.push(m);
    }
    let mut t: Vec<_> = c
        .finish()
        .into_iter()
        .map(|t| {
            (
                t.status,
                t.query_count,
                t.response
                    .as_ref()
                    .map(|r| r.ts_ns / 1_000_000 - t.ts_ns() / 1_000_000),
            )
        })
        .collect();
    t.sort();
    t
}

#[test]
fn retransmission_counts_from_first_copy() {
    let r = run(vec![
        obs(0, false, 7, "a.example"),
        obs(1000, false, 7, "a.example"),
        obs(1500, true, 7, "a.example"),
    ]);
    assert_eq!(r, vec![(Status::Answered, 2, Some(1500))]);
}

#[test]
fn late_and_duplicate_responses_answer_nothing() {
    let r = run(vec![
        obs(0, false, 1, "a.example"),
        obs(11_000, true, 1, "a.example"),
        obs(12_000, false, 2, "b.example"),
        obs(12_001, true, 2, "b.example"),
        obs(12_002, true, 2, "b.example"),
    ]);
    assert_eq!(
        r,
        vec![
            (Status::Answered, 1, Some(1)),
            (Status::Unanswered, 1, None),
            (Status::ResponseOnly, 0, Some(0)),
            (Status::ResponseOnly, 0, Some(0)),
        ]
    );
}

#[test]
fn a_zone_transfer_is_one_transaction() {
    let mut msgs = vec![
        obs(0, false, 9, "example.com"),
        obs(5, true, 9, "example.com"),
        obs(6, true, 9, "example.com"),
    ];
    for m in &mut msgs {
        m.transport = Transport::Tcp;
        m.msg.question.as_mut().unwrap().qtype = Qtype(252);
    }
    msgs[2].msg.question = None;
    msgs[1].msg.ancount = 3;
    msgs[2].msg.ancount = 2;
    let mut c = Correlator::new(10_000_000_000);
    for m in msgs {
        c.push(m);
    }
    let t = c.finish();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].response.as_ref().unwrap().msg.ancount, 5);
    assert_eq!(t[0].response.as_ref().unwrap().msg.size, 60);
}

#[test]
fn question_must_match_within_a_key() {
    let r = run(vec![
        obs(0, false, 1, "a.example"),
        obs(1, false, 1, "b.example"),
        obs(2, true, 1, "b.example"),
    ]);
    assert_eq!(
        r,
        vec![
            (Status::Answered, 1, Some(1)),
            (Status::Unanswered, 1, None)
        ]
    );
}

/// Answered queries' entries do not pile up in `order` for the length
/// of the timeout, and the unanswered ones among them still close, in
/// time, as unanswered.
#[test]
fn answered_queries_leave_the_expiry_order() {
    let mut c = Correlator::new(10_000_000_000);
    let mut most = 0;
    for i in 0..50_000i64 {
        let id = (i % 60_000) as u16;
        c.push(obs(i, false, id, "a.example"));
        // every hundredth query goes unanswered
        if i % 100 != 0 {
            c.push(obs(i, true, id, "a.example"));
        }
        most = most.max(c.order.len());
    }
    // a query a millisecond: of the last 10 s, 100 wait and 9,900 were
    // answered, which the order held until their time was up
    assert_eq!(c.live, 100);
    assert!(most <= 2 * 101 + ORDER_SLACK + 1, "{most}");
    let out = c.finish();
    let unanswered: Vec<i64> = out
        .iter()
        .filter(|t| t.status == Status::Unanswered)
        .map(|t| t.ts_ns() / 1_000_000)
        .collect();
    assert_eq!(unanswered, (0..50_000).step_by(100).collect::<Vec<_>>());
    assert_eq!(out.len(), 50_000);
}

/// Past its cap, a correlator closes the oldest query still waiting,
/// even when answered queries' entries come before it.
#[test]
fn past_the_cap_the_oldest_waiting_query_closes() {
    let mut c = Correlator {
        cap: 2,
        ..Correlator::new(10_000_000_000)
    };
    c.push(obs(0, false, 1, "a.example"));
    c.push(obs(1, true, 1, "a.example"));
    c.push(obs(2, false, 2, "a.example"));
    c.push(obs(3, false, 3, "a.example"));
    c.push(obs(4, false, 4, "a.example"));
    assert_eq!(c.live, 2);
    let closed: Vec<(Status, i64)> = c
        .take_done(4_000_000)
        .map(|t| (t.status, t.ts_ns() / 1_000_000))
        .collect();
    assert_eq!(closed, vec![(Status::Answered, 0), (Status::Unanswered, 2)]);
}
