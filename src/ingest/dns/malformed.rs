//! Why messages are counted malformed, and their counts by reason (the
//! captures table's `malformed_*` columns).

use super::DecodeError;

/// Why a DNS-port payload is counted malformed: a decode error of the
/// message, a payload shorter than a header, or a UDP payload cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Decode(DecodeError),
    TooShort,
    Cut,
}

impl Malformed {
    /// Why a decoded message is malformed, if it is: the fault its decoding
    /// stopped at, else its being cut short by the capture.
    pub fn of(fault: Option<DecodeError>, cut: bool) -> Option<Malformed> {
        match fault {
            Some(e) => Some(Malformed::Decode(e)),
            None if cut => Some(Malformed::Cut),
            None => None,
        }
    }

    /// Every reason, in the order of the captures table's columns.
    pub const ALL: [Malformed; 7] = [
        Malformed::Decode(DecodeError::Truncated),
        Malformed::Decode(DecodeError::BadLabel),
        Malformed::Decode(DecodeError::BadPointer),
        Malformed::Decode(DecodeError::NameTooLong),
        Malformed::Decode(DecodeError::BadRdata),
        Malformed::TooShort,
        Malformed::Cut,
    ];

    /// `bad_pointer`: the column is `malformed_bad_pointer`.
    pub fn name(self) -> &'static str {
        match self {
            Malformed::Decode(e) => e.name(),
            Malformed::TooShort => "too_short",
            Malformed::Cut => "cut",
        }
    }

    fn index(self) -> usize {
        match self {
            Malformed::Decode(e) => e as usize,
            Malformed::TooShort => 5,
            Malformed::Cut => 6,
        }
    }
}

/// Messages counted per reason they are malformed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MalformedCounts([u64; 7]);

impl std::ops::Index<Malformed> for MalformedCounts {
    type Output = u64;
    fn index(&self, m: Malformed) -> &u64 {
        &self.0[m.index()]
    }
}

impl std::ops::IndexMut<Malformed> for MalformedCounts {
    fn index_mut(&mut self, m: Malformed) -> &mut u64 {
        &mut self.0[m.index()]
    }
}

impl MalformedCounts {
    /// Messages counted, whatever the reason (each has one).
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl std::ops::AddAssign for MalformedCounts {
    fn add_assign(&mut self, o: MalformedCounts) {
        for m in Malformed::ALL {
            self[m] += o[m];
        }
    }
}
