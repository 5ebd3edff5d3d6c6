//! Ingest stage 4: pairs queries with responses (SPEC §5).
//!
//! In: `Observed` DNS messages in time order. Out: `Transaction`s.
//! Key: transport, client address and port, server address and port, DNS id.
//! Each key holds a FIFO of outstanding queries; a response answers the oldest
//! one whose question (qname, qtype, qclass) equals its own, or the oldest
//! one when it carries no question. A query equal to one still outstanding is
//! a retransmission. Queries unanswered `timeout` after their first copy, or
//! at the end of the input, become `unanswered`; responses that answer
//! nothing become `response_only`.

use std::collections::VecDeque;
use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};
use smallvec::SmallVec;

use crate::ingest::dns::{DnsMessage, Question};
use crate::ingest::link::Transport;

/// A DNS message and where and when it was seen.
#[derive(Debug, Clone)]
pub struct Observed {
    pub ts_ns: i64,
    /// Index of the capture in this ingest's capture list.
    pub capture: u32,
    /// 1-based frame number in that capture.
    pub frame: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub transport: Transport,
    /// What was peeled off to reach it (none for most captures).
    pub tunnels: crate::ingest::tunnel::Tunnels,
    /// Boxed: an `Observed` moves through half a dozen queues between decoding
    /// and the spool, and the message (264 bytes) is most of its size.
    pub msg: Box<DnsMessage>,
    /// What the server's own log said of it: set for a dnstap message, `None`
    /// for a captured packet.
    pub logged: Option<Logged>,
}

/// What a dnstap log tells of a message besides the message itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub kind: crate::ingest::dnstap::MessageType,
    /// The logging server: the number of its `identity` in this process
    /// (`dnstap::server_number`, `dnstap::server_name`), 0 when it sent none.
    pub server: u32,
    /// For a response: when its query came, as the server logged it.
    pub query_ts_ns: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Answered,
    Unanswered,
    ResponseOnly,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Answered => "answered",
            Status::Unanswered => "unanswered",
            Status::ResponseOnly => "response_only",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub status: Status,
    pub query: Option<Observed>,
    pub response: Option<Observed>,
    /// Copies of the query seen before the response (0 for `response_only`).
    pub query_count: u32,
}

impl Transaction {
    /// The message that defines the transaction's time and endpoints.
    pub fn first(&self) -> &Observed {
        match (&self.query, &self.response) {
            (Some(q), _) => q,
            (None, Some(r)) => r,
            (None, None) => unreachable!("a transaction holds a query or a response"),
        }
    }

    /// The query's time: its message's, or for a dnstap response paired
    /// without its query, the query time the server logged with it.
    pub fn query_ts_ns(&self) -> Option<i64> {
        match (&self.query, &self.response) {
            (Some(q), _) => Some(q.ts_ns),
            (None, Some(r)) if self.status == Status::Answered => {
                r.logged.as_ref().and_then(|l| l.query_ts_ns)
            }
            _ => None,
        }
    }

    /// The transaction's time: its query's, or its lone response's.
    pub fn ts_ns(&self) -> i64 {
        self.query_ts_ns().unwrap_or_else(|| self.first().ts_ns)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlowKey {
    /// Who saw the message: `None` on the wire; for a server's log, the
    /// server (its identity) and its role (client side, resolver side...).
    /// The same query logged by a resolver, by the authority it asked and
    /// captured on the wire is three observations, never a retransmission.
    vantage: Option<(i32, u32)>,
    transport: Transport,
    client: IpAddr,
    client_port: u16,
    server: IpAddr,
    server_port: u16,
    id: u16,
}

struct Pending {
    seq: u64,
    query: Observed,
    count: u32,
}

/// Outstanding queries kept at most; beyond this the oldest is closed as
/// `unanswered` early, so memory stays bounded on any input.
pub const MAX_PENDING: usize = 1_000_000;
/// Entries of answered queries `order` may hold beyond as many as there are
/// live ones, before they are dropped (`Correlator::compact_order`).
const ORDER_SLACK: usize = 4096;

pub struct Correlator {
    timeout_ns: i64,
    /// Outstanding queries kept at most (`MAX_PENDING` unless shared out).
    cap: usize,
    /// Outstanding queries per key, oldest first: nearly always one, held
    /// inline instead of in an allocation of its own.
    pending: HashMap<FlowKey, SmallVec<[Pending; 1]>>,
    /// Outstanding queries in arrival order: (first seen, key, seq).
    order: VecDeque<(i64, FlowKey, u64)>,
    live: usize,
    next_seq: u64,
    out: Vec<Transaction>,
    /// Zone transfers answered on a key: (index in `out`, question, last message time).
    /// Later response messages on the key belong to the same transaction.
    xfers: HashMap<FlowKey, (usize, Option<Question>, i64)>,
}

impl Correlator {
    pub fn new(timeout_ns: i64) -> Self {
        Correlator {
            timeout_ns,
            cap: MAX_PENDING,
            pending: HashMap::new(),
            order: VecDeque::new(),
            live: 0,
            next_seq: 0,
            out: Vec::new(),
            xfers: HashMap::new(),
        }
    }

    /// Feeds one message; messages must come in time order.
    pub fn push(&mut self, obs: Observed) {
        self.expire(obs.ts_ns);
        if obs.msg.flags.qr() {
            self.push_response(obs);
        } else {
            self.push_query(obs);
        }
    }

    fn push_query(&mut self, obs: Observed) {
        let key = FlowKey {
            vantage: vantage(&obs),
            transport: obs.transport,
            client: obs.src,
            client_port: obs.sport,
            server: obs.dst,
            server_port: obs.dport,
            id: obs.msg.id,
        };
        let queue = self.pending.entry(key.clone()).or_default();
        if let Some(p) = queue
            .iter_mut()
            .find(|p| same_question(&p.query.msg.question, &obs.msg.question))
        {
            p.count += 1;
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((obs.ts_ns, key, seq));
        queue.push(Pending {
            seq,
            query: obs,
            count: 1,
        });
        self.live += 1;
        if self.live > self.cap {
            // the oldest query still waiting, not the entry of one answered
            while !self.close_oldest() && !self.order.is_empty() {}
        }
        if self.order.len() > 2 * self.live + ORDER_SLACK {
            self.compact_order();
        }
    }

    /// Drops the entries of answered queries from `order`, keeping the
    /// others in their order. An answered query leaves `pending` at once but
    /// `order` only when its time is up: at 10 s and 15 k queries a second
    /// for a shard, 150 k entries of 72 bytes a shard (heaptrack: 44 MB of a
    /// 2-thread ingest's peak, in `VecDeque` growth).
    fn compact_order(&mut self) {
        let pending = &self.pending;
        self.order.retain(|(_, key, seq)| {
            pending
                .get(key)
                .is_some_and(|queue| queue.iter().any(|p| p.seq == *seq))
        });
    }

    fn push_response(&mut self, obs: Observed) {
        let key = FlowKey {
            vantage: vantage(&obs),
            transport: obs.transport,
            client: obs.dst,
            client_port: obs.dport,
            server: obs.src,
            server_port: obs.sport,
            id: obs.msg.id,
        };
        let mut matched = None;
        if let Some(queue) = self.pending.get_mut(&key) {
            let idx = match &obs.msg.question {
                None => (!queue.is_empty()).then_some(0),
                q => queue
                    .iter()
                    .position(|p| same_question(&p.query.msg.question, q)),
            };
            matched = idx.map(|i| queue.remove(i));
            if queue.is_empty() {
                self.pending.remove(&key);
            }
        }
        match matched {
            Some(p) => {
                self.live -= 1;
                let xfr = obs.transport.is_stream()
                    && p.query
                        .msg
                        .question
                        .as_ref()
                        .is_some_and(|q| matches!(q.qtype.0, 251 | 252));
                if xfr {
                    let q = p.query.msg.question.clone();
                    self.xfers.insert(key, (self.out.len(), q, obs.ts_ns));
                }
                self.out.push(Transaction {
                    status: Status::Answered,
                    query: Some(p.query),
                    response: Some(obs),
                    query_count: p.count,
                });
            }
            None => {
                if let Some((idx, q, last)) = self.xfers.get_mut(&key) {
                    let same = obs.msg.question.is_none() || obs.msg.question == *q;
                    if same && obs.ts_ns.saturating_sub(*last) <= self.timeout_ns {
                        *last = obs.ts_ns;
                        if let Some(r) = self.out[*idx].response.as_mut() {
                            // RFC 5936 §2.2: one transfer, many messages
                            let m = obs.msg;
                            r.msg.ancount = r.msg.ancount.saturating_add(m.ancount);
                            r.msg.nscount = r.msg.nscount.saturating_add(m.nscount);
                            r.msg.arcount = r.msg.arcount.saturating_add(m.arcount);
                            r.msg.size = r.msg.size.saturating_add(m.size);
                            r.msg.malformed |= m.malformed;
                            r.msg.more.extend(m.wire);
                            r.msg.more.extend(m.more);
                        }
                        return;
                    }
                }
                // a server's log that gives the query's time with the
                // response pairs it, its query message logged or not
                let hinted = obs.logged.as_ref().is_some_and(|l| l.query_ts_ns.is_some());
                self.out.push(Transaction {
                    status: if hinted {
                        Status::Answered
                    } else {
                        Status::ResponseOnly
                    },
                    query: None,
                    response: Some(obs),
                    query_count: u32::from(hinted),
                })
            }
        }
        if self.xfers.len() > 10_000 {
            let (now, timeout) = (self.out.last().map_or(0, |t| t.ts_ns()), self.timeout_ns);
            self.xfers
                .retain(|_, (_, _, last)| now.saturating_sub(*last) <= timeout);
        }
    }

    /// Closes every query first seen more than the timeout before `now`.
    /// `push` does this with each message's own time; a caller that shards
    /// the stream calls it with the times of the messages other shards got.
    pub fn expire(&mut self, now: i64) {
        while let Some((first, _, _)) = self.order.front() {
            if now.saturating_sub(*first) <= self.timeout_ns {
                break;
            }
            self.close_oldest();
        }
    }

    /// Pops the oldest entry of `order` and closes its query as unanswered;
    /// false if that query was already answered.
    fn close_oldest(&mut self) -> bool {
        let Some((_, key, seq)) = self.order.pop_front() else {
            return false;
        };
        let Some(queue) = self.pending.get_mut(&key) else {
            return false;
        };
        let Some(idx) = queue.iter().position(|p| p.seq == seq) else {
            return false; // already answered
        };
        let p = queue.remove(idx);
        self.live -= 1;
        self.out.push(Transaction {
            status: Status::Unanswered,
            query: Some(p.query),
            response: None,
            query_count: p.count,
        });
        if queue.is_empty() {
            self.pending.remove(&key);
        }
        true
    }

    /// Hands over the transactions that are complete. A zone transfer still
    /// receiving messages (within the timeout of `now`) and everything after
    /// it stay, so that later messages can join it.
    /// The buffer keeps its capacity from one window to the next.
    pub fn take_done(&mut self, now: i64) -> std::vec::Drain<'_, Transaction> {
        let timeout = self.timeout_ns;
        self.xfers
            .retain(|_, (_, _, last)| now.saturating_sub(*last) <= timeout);
        let done = self
            .xfers
            .values()
            .map(|(i, _, _)| *i)
            .min()
            .unwrap_or(self.out.len());
        for (i, _, _) in self.xfers.values_mut() {
            *i -= done;
        }
        self.out.drain(..done)
    }

    /// One of `shards` correlators sharing the `MAX_PENDING` cap.
    pub fn shard(timeout_ns: i64, shards: usize) -> Self {
        Correlator {
            cap: MAX_PENDING / shards.max(1),
            ..Correlator::new(timeout_ns)
        }
    }

    /// Ends the input: every outstanding query becomes `unanswered`.
    pub fn finish(mut self) -> Vec<Transaction> {
        while !self.order.is_empty() {
            self.close_oldest();
        }
        self.out
    }
}

fn vantage(o: &Observed) -> Option<(i32, u32)> {
    o.logged
        .as_ref()
        .map(|l| ((l.kind.0 - 1).div_euclid(2), l.server))
}

/// Questions are equal when qname (compared case-insensitively; ours are
/// already lower-cased), qtype and qclass are.
fn same_question(a: &Option<Question>, b: &Option<Question>) -> bool {
    a == b
}

#[cfg(test)]
mod tests;
