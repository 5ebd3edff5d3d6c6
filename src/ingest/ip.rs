//! Ingest stage 2a: IPv4 and IPv6 fragment reassembly (RFC 791, RFC 8200 §4.5).
//!
//! In: fragments, in time order. Out: whole datagram payloads (the transport
//! header and data), stamped with the frame of the fragment that completes them.
//! Memory is bounded: at most `MAX_PARTIAL` datagrams in progress, each at most
//! 64 KiB plus a fragment, each given up `TIMEOUT_NS` after its first fragment.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::ingest::link::Fragment;
use crate::ingest::tunnel::Tunnels;

const MAX_PARTIAL: usize = 10_000;
const MAX_DATAGRAM: usize = 65_535 + 1500;
const TIMEOUT_NS: i64 = 30 * 1_000_000_000;

/// A fragment copied out of its frame.
#[derive(Debug, Clone)]
pub struct OwnedFragment {
    pub ts_ns: i64,
    pub capture: u32,
    pub frame: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    pub offset: usize,
    pub more: bool,
    pub data: Vec<u8>,
    pub tunnels: Tunnels,
}

impl OwnedFragment {
    /// `f` copied out of frame `frame` of capture `capture`, seen at `ts_ns`.
    pub fn new(f: &Fragment<'_>, ts_ns: i64, capture: u32, frame: u64) -> Self {
        OwnedFragment {
            ts_ns,
            capture,
            frame,
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
            offset: f.offset,
            more: f.more,
            data: f.data.to_vec(),
            tunnels: f.tunnels,
        }
    }
}

/// A datagram put back together.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub ts_ns: i64,
    pub capture: u32,
    pub frame: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub payload: Vec<u8>,
    /// What was peeled off the fragment that completed it.
    pub tunnels: Tunnels,
}

type Key = (IpAddr, IpAddr, u32, u8);

struct Partial {
    /// The capture of its first fragment, charged when it is given up.
    capture: u32,
    first_ts: i64,
    pieces: Vec<(usize, Vec<u8>)>,
    total: Option<usize>,
    bytes: usize,
}

#[derive(Default)]
pub struct Defragmenter {
    partial: HashMap<Key, Partial>,
    /// Datagrams given up: timed out, too large, or evicted. Counted per capture.
    pub lost: HashMap<u32, u64>,
}

impl Defragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fragment; returns the datagram when it is complete.
    pub fn push(&mut self, f: OwnedFragment) -> Option<Datagram> {
        let now = f.ts_ns;
        if self.partial.len() >= MAX_PARTIAL {
            let mut dropped = Vec::new();
            self.partial.retain(|_, p| {
                let keep = now.saturating_sub(p.first_ts) <= TIMEOUT_NS;
                if !keep {
                    dropped.push(p.capture);
                }
                keep
            });
            if self.partial.len() >= MAX_PARTIAL {
                dropped.extend(self.partial.drain().map(|(_, p)| p.capture));
            }
            for c in dropped {
                *self.lost.entry(c).or_default() += 1;
            }
        }
        let key = (f.src, f.dst, f.id, f.proto);
        let fresh = || Partial {
            capture: f.capture,
            first_ts: now,
            pieces: Vec::new(),
            total: None,
            bytes: 0,
        };
        let p = self.partial.entry(key).or_insert_with(fresh);
        if now.saturating_sub(p.first_ts) > TIMEOUT_NS {
            *self.lost.entry(p.capture).or_default() += 1;
            *p = fresh();
        }
        let end = f.offset + f.data.len();
        if end > MAX_DATAGRAM || p.bytes + f.data.len() > 2 * MAX_DATAGRAM {
            let capture = p.capture;
            self.partial.remove(&key);
            *self.lost.entry(capture).or_default() += 1;
            return None;
        }
        if !f.more {
            p.total = Some(end);
        }
        p.bytes += f.data.len();
        p.pieces.push((f.offset, f.data));
        let total = p.total?;
        // complete when the pieces cover [0, total) without a hole
        p.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0;
        for (o, d) in &p.pieces {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + d.len());
        }
        if covered < total {
            return None;
        }
        let p = self.partial.remove(&key)?;
        let mut payload = vec![0u8; total];
        let mut filled = 0;
        for (o, d) in p.pieces {
            // overlaps: the first copy of a byte wins
            let from = filled.max(o);
            let to = (o + d.len()).min(total);
            if to > from {
                payload[from..to].copy_from_slice(&d[from - o..to - o]);
                filled = to;
            }
        }
        Some(Datagram {
            ts_ns: now,
            capture: f.capture,
            frame: f.frame,
            src: f.src,
            dst: f.dst,
            proto: f.proto,
            payload,
            tunnels: f.tunnels,
        })
    }

    /// Ends the input: datagrams still incomplete are lost.
    pub fn finish(mut self) -> HashMap<u32, u64> {
        for p in self.partial.values() {
            *self.lost.entry(p.capture).or_default() += 1;
        }
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(frame: u64, offset: usize, more: bool, data: &[u8]) -> OwnedFragment {
        OwnedFragment {
            ts_ns: frame as i64,
            capture: 0,
            frame,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            id: 7,
            proto: 17,
            offset,
            more,
            data: data.to_vec(),
            tunnels: Tunnels::default(),
        }
    }

    #[test]
    fn unfinished_datagrams_are_charged_to_their_own_capture() {
        let mut d = Defragmenter::new();
        let mut a = frag(1, 0, true, &[0; 8]);
        a.capture = 2;
        let mut b = frag(2, 0, true, &[0; 8]);
        b.capture = 1;
        b.id = 8;
        assert!(d.push(a).is_none());
        assert!(d.push(b).is_none());
        let lost = d.finish();
        assert_eq!(lost.get(&2), Some(&1));
        assert_eq!(lost.get(&1), Some(&1));
        assert_eq!(lost.get(&0), None);
    }

    #[test]
    fn out_of_order_and_duplicate_fragments() {
        let whole: Vec<u8> = (0..40u8).collect();
        let mut d = Defragmenter::new();
        assert!(d.push(frag(1, 24, false, &whole[24..])).is_none());
        assert!(d.push(frag(2, 0, true, &whole[..16])).is_none());
        assert!(d.push(frag(3, 0, true, &whole[..16])).is_none());
        let got = d.push(frag(4, 16, true, &whole[16..24])).expect("complete");
        assert_eq!(got.payload, whole);
        assert_eq!(got.frame, 4);
    }
}
