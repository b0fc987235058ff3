//! A tiny byte cursor for the date grammars. Its steps are inlined: a date is read for
//! every string trait and property of every event.

pub(super) struct Cursor<'a> {
    pub b: &'a [u8],
    pub i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            b: text.as_bytes(),
            i: 0,
        }
    }

    #[inline]
    pub fn done(&self) -> bool {
        self.i == self.b.len()
    }

    #[inline]
    pub fn peek(&self, c: u8) -> bool {
        self.b.get(self.i) == Some(&c)
    }

    #[inline]
    pub fn peek_digit(&self) -> bool {
        self.b.get(self.i).is_some_and(u8::is_ascii_digit)
    }

    #[inline]
    pub fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// Exactly `n` ASCII digits as a number; the cursor does not move on a miss.
    #[inline]
    pub fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.b.get(self.i..self.i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    /// An optional `sep` followed by exactly `n` digits, or nothing consumed (a regex's
    /// `(?:-?(\d{2}))?`).
    #[inline]
    pub fn digits_after(&mut self, sep: u8, n: usize) -> Option<u32> {
        let start = self.i;
        self.eat(sep);
        let value = self.digits(n);
        if value.is_none() {
            self.i = start;
        }
        value
    }

    /// One or more digits, as their ASCII bytes (no need to check them as UTF-8 text).
    #[inline]
    pub fn digit_run(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek_digit() {
            self.i += 1;
        }
        (self.i > start).then(|| &self.b[start..self.i])
    }
}
