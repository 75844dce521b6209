//! Redis glob patterns (KEYS, SCAN MATCH), as Redis's `stringmatchlen`.
//!
//! `*` any run of bytes, `?` one byte, `[abc]` one of, `[^abc]` none of,
//! `[a-z]` a range (reversed bounds are swapped), `\x` the byte `x` literally,
//! inside and outside brackets. An unclosed `[` ends the pattern with the
//! bytes listed so far, and a lone trailing `\` is a literal backslash, as in
//! Redis. Matching is byte-wise and case-sensitive.
//!
//! Every token but `*` matches exactly one byte, so a greedy match that only
//! backtracks to the last `*` is complete and takes O(pattern × text) at worst,
//! unlike Redis's recursive matcher which can take exponential time.

#[derive(Debug)]
enum Token {
    Star,
    AnyByte,
    Byte(u8),
    Class { negated: bool, ranges: Vec<(u8, u8)> },
}

impl Token {
    fn matches(&self, b: u8) -> bool {
        match self {
            Token::Star => true,
            Token::AnyByte => true,
            Token::Byte(x) => *x == b,
            Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi) != *negated,
        }
    }
}

/// A compiled glob pattern.
#[derive(Debug)]
pub struct Pattern {
    tokens: Vec<Token>,
    match_all: bool,
}

impl Pattern {
    /// Compiles a pattern; every byte string is a valid pattern.
    pub fn new(pattern: &[u8]) -> Pattern {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            match pattern[i] {
                b'*' => {
                    if !matches!(tokens.last(), Some(Token::Star)) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => tokens.push(Token::AnyByte),
                b'\\' if i + 1 < pattern.len() => {
                    i += 1;
                    tokens.push(Token::Byte(pattern[i]));
                }
                b'[' => {
                    i += 1;
                    let negated = pattern.get(i) == Some(&b'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    while i < pattern.len() && pattern[i] != b']' {
                        if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            i += 1;
                            ranges.push((pattern[i], pattern[i]));
                        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
                            let (a, b) = (pattern[i], pattern[i + 2]);
                            ranges.push((a.min(b), a.max(b)));
                            i += 2;
                        } else {
                            ranges.push((pattern[i], pattern[i]));
                        }
                        i += 1;
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                b => tokens.push(Token::Byte(b)),
            }
            i += 1;
        }
        let match_all = matches!(tokens.as_slice(), [Token::Star]);
        Pattern { tokens, match_all }
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &[u8]) -> bool {
        if self.match_all {
            return true;
        }
        let toks = &self.tokens;
        let (mut p, mut t) = (0, 0);
        // Where the last `*` was and the text position it is currently made to cover up to.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match toks.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(tok) if tok.matches(text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            let Some((sp, st)) = star else { return false };
            star = Some((sp, st + 1));
            p = sp + 1;
            t = st + 1;
        }
        toks[p..].iter().all(|tok| matches!(tok, Token::Star))
    }
}

/// Whether `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    Pattern::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn stars_and_questions() {
        assert!(m(b"*", b""));
        assert!(m(b"*", b"anything"));
        assert!(m(b"h?llo", b"hello"));
        assert!(!m(b"h?llo", b"hllo"));
        assert!(m(b"h*llo", b"hllo"));
        assert!(m(b"h*llo", b"heeeello"));
        assert!(m(b"*a*b*c*", b"xxaxxbxxcxx"));
        assert!(!m(b"*a*b*c*", b"xxaxxcxxbxx"));
        assert!(m(b"a*", b"a"));
        assert!(!m(b"a", b"ab"));
        assert!(!m(b"ab", b"a"));
        assert!(m(b"", b""));
        assert!(!m(b"", b"a"));
    }

    #[test]
    fn classes() {
        assert!(m(b"h[ae]llo", b"hello"));
        assert!(m(b"h[ae]llo", b"hallo"));
        assert!(!m(b"h[ae]llo", b"hillo"));
        assert!(m(b"h[^e]llo", b"hallo"));
        assert!(!m(b"h[^e]llo", b"hello"));
        assert!(m(b"h[a-b]llo", b"hbllo"));
        assert!(!m(b"h[a-b]llo", b"hcllo"));
        assert!(m(b"h[b-a]llo", b"hallo"), "reversed range is swapped");
        assert!(m(b"[\\]]", b"]"));
        assert!(m(b"[a\\-z]", b"-"));
        assert!(!m(b"[a\\-z]", b"b"));
        assert!(m(b"[ab", b"a"), "unclosed class ends the pattern");
        assert!(!m(b"[]", b"a"), "empty class matches nothing");
    }

    #[test]
    fn escapes() {
        assert!(m(b"\\*", b"*"));
        assert!(!m(b"\\*", b"a"));
        assert!(m(b"a\\?", b"a?"));
        assert!(!m(b"a\\?", b"ab"));
        assert!(m(b"a\\", b"a\\"), "trailing backslash is literal");
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = vec![b'a'; 10_000];
        let mut pattern = b"*a".repeat(50);
        pattern.push(b'b');
        assert!(!m(&pattern, &text));
    }
}
