//! Finding credentials in free text and masking them, with hand-written
//! scanners (no regex engine in the guest: smaller, and linear time on any
//! input).
//!
//! What counts as a credential, each replaced by [`REDACTED`]:
//!
//! - **JWTs**: `eyJ…` `.` `…` `.` `…` (base64url header and payload of at
//!   least 10 characters each).
//! - **Bearer tokens**: the token after `Bearer ` (any case) when it is at
//!   least 8 characters and holds a digit or one of `-._~+/=`, or is at least
//!   20 characters long, so prose like "bearer authentication" stays.
//! - **Key/value secrets**: the value after a key that ends in `password`,
//!   `passwd`, `token`, `secret`, `apikey`, `api_key`, `api-key`,
//!   `access_key` or `access-key` (any case, so `AWS_SECRET_ACCESS_KEY` and
//!   `db.password` count), separated by `=` or `:`, the key and value
//!   optionally quoted (`"password": "x"`). The key and separator stay. An
//!   unquoted value after `: ` (colon and space) must mix letters and digits,
//!   because that is how prose reads too ("failed to fetch token: not found").
//! - **AWS access key ids**: `AKIA` or `ASIA` and 16 of `[0-9A-Z]`.
//! - **High-entropy runs** of at least 32 characters:
//!   base64-like runs (`[A-Za-z0-9+/=_-]`) that mix upper case, lower case and
//!   digits, switch between them often and carry at least 4 bits of entropy
//!   per character (kube names are lower case, so they never qualify); and
//!   hex runs with digits and letters, except 40 and 64 characters long — the
//!   SHA-1 and SHA-256 sizes of commit ids, image digests and the container
//!   and sandbox ids kubelet prints — and except digests (`sha256:…`).
//!
//! Not credentials: image digests, UUIDs, pod and node names, URLs, ordinary
//! kube messages.

use std::ops::Range;

/// What every credential is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// `message` with every credential replaced by [`REDACTED`], or `None` when
/// it holds none.
///
/// ```
/// use secret_guard::redact;
/// assert_eq!(
///     redact("login failed for password=hunter2").as_deref(),
///     Some("login failed for password=[REDACTED]")
/// );
/// assert_eq!(redact("Started container api"), None);
/// ```
pub fn redact(message: &str) -> Option<String> {
    let spans = find_secrets(message);
    if spans.is_empty() {
        return None;
    }
    let mut redacted = String::with_capacity(message.len());
    let mut copied_up_to = 0;
    for span in spans {
        redacted.push_str(&message[copied_up_to..span.start]);
        redacted.push_str(REDACTED);
        copied_up_to = span.end;
    }
    redacted.push_str(&message[copied_up_to..]);
    Some(redacted)
}

/// The byte ranges of `text` that hold credentials: sorted, disjoint, on
/// character boundaries.
pub fn find_secrets(text: &str) -> Vec<Range<usize>> {
    // Almost every message holds no credential: one cheap pass over the bytes
    // settles that without allocating, and only a message with a candidate
    // pays for the scanners below.
    if !may_hold_secret(text.as_bytes()) {
        return Vec::new();
    }
    scan(text)
}

/// Every scanner over the whole of `text`; [`find_secrets`] without the
/// screening pass.
fn scan(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    jwts(bytes, &mut spans);
    bearer_tokens(bytes, &mut spans);
    key_values(bytes, &mut spans);
    aws_access_key_ids(bytes, &mut spans);
    base64_runs(bytes, &mut spans);
    hex_runs(bytes, &mut spans);
    merge(text, spans)
}

fn jwts(bytes: &[u8], spans: &mut Vec<Range<usize>>) {
    const MIN_SEGMENT: usize = 10;
    let mut from = 0;
    while let Some(start) = find(bytes, from, b"eyJ") {
        from = start + 1;
        if start > 0 && is_base64url(bytes[start - 1]) {
            continue;
        }
        let header_end = run_end(bytes, start, is_base64url);
        if header_end - start < MIN_SEGMENT || bytes.get(header_end) != Some(&b'.') {
            continue;
        }
        let payload_end = run_end(bytes, header_end + 1, is_base64url);
        if payload_end - (header_end + 1) < MIN_SEGMENT || bytes.get(payload_end) != Some(&b'.') {
            continue;
        }
        // The signature may be empty (an unsigned token ends in a dot).
        let signature_end = run_end(bytes, payload_end + 1, is_base64url);
        spans.push(start..signature_end);
        from = signature_end;
    }
}

fn bearer_tokens(bytes: &[u8], spans: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(start) = find_ignore_ascii_case(bytes, from, b"bearer") {
        from = start + b"bearer".len();
        if start > 0 && bytes[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let token_start = run_end(bytes, from, |byte| byte == b' ' || byte == b'\t');
        if token_start == from {
            continue;
        }
        let token_end = run_end(bytes, token_start, is_token68);
        let token = &bytes[token_start..token_end];
        let looks_like_a_token = token.len() >= 20
            || (token.len() >= 8
                && token
                    .iter()
                    .any(|&byte| byte.is_ascii_digit() || !byte.is_ascii_alphanumeric()));
        if looks_like_a_token {
            spans.push(token_start..token_end);
            from = token_end;
        }
    }
}

/// Key names (their endings) whose values are secrets.
const SECRET_KEYS: [&[u8]; 9] = [
    b"password",
    b"passwd",
    b"token",
    b"secret",
    b"apikey",
    b"api_key",
    b"api-key",
    b"access_key",
    b"access-key",
];

fn key_values(bytes: &[u8], spans: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while at < bytes.len() {
        if !is_key_char(bytes[at]) {
            at += 1;
            continue;
        }
        let key_end = run_end(bytes, at, is_key_char);
        let key = &bytes[at..key_end];
        at = key_end;
        let names_a_secret = SECRET_KEYS.iter().any(|name| {
            key.len() >= name.len() && key[key.len() - name.len()..].eq_ignore_ascii_case(name)
        });
        if !names_a_secret {
            continue;
        }
        if let Some(value) = value_after_key(bytes, key_end) {
            at = value.end;
            spans.push(value);
        }
    }
}

/// The value of `key=value`, `key: value`, `"key": "value"`, … whose key ends
/// at `key_end`.
fn value_after_key(bytes: &[u8], key_end: usize) -> Option<Range<usize>> {
    let mut at = key_end;
    if matches!(bytes.get(at), Some(b'"' | b'\'')) {
        at += 1; // the closing quote of a quoted key
    }
    at = run_end(bytes, at, is_blank);
    let separator = *bytes.get(at)?;
    if separator != b'=' && separator != b':' {
        return None;
    }
    at += 1;
    if separator == b':' && bytes.get(at) == Some(&b'/') {
        return None; // `token://…`, a URL scheme
    }
    let value_start = run_end(bytes, at, is_blank);
    let spaced = value_start > at;
    if let Some(&quote @ (b'"' | b'\'')) = bytes.get(value_start) {
        let inner = value_start + 1;
        if let Some(length) = bytes[inner..].iter().position(|&byte| byte == quote) {
            return (length > 0).then(|| inner..inner + length);
        }
        // No closing quote: fall through and take the unquoted run after it.
        return unquoted_value(bytes, inner, separator == b':' && spaced);
    }
    unquoted_value(bytes, value_start, separator == b':' && spaced)
}

fn unquoted_value(bytes: &[u8], start: usize, must_look_random: bool) -> Option<Range<usize>> {
    let end = run_end(bytes, start, |byte| {
        !byte.is_ascii_whitespace() && !b"\"'`,;&)}]".contains(&byte)
    });
    let value = &bytes[start..end];
    if value.is_empty() || bytes[start..].starts_with(REDACTED.as_bytes()) {
        return None;
    }
    if must_look_random
        && !(value.iter().any(u8::is_ascii_digit) && value.iter().any(u8::is_ascii_alphabetic))
    {
        return None;
    }
    Some(start..end)
}

fn aws_access_key_ids(bytes: &[u8], spans: &mut Vec<Range<usize>>) {
    for prefix in [b"AKIA", b"ASIA"] {
        let mut from = 0;
        while let Some(start) = find(bytes, from, prefix) {
            from = start + 1;
            let end = start + AWS_KEY_ID;
            let bounded = (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
                && bytes
                    .get(end)
                    .is_none_or(|byte| !byte.is_ascii_alphanumeric());
            let well_formed = bytes.get(start + prefix.len()..end).is_some_and(|rest| {
                rest.iter()
                    .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
            });
            if bounded && well_formed {
                spans.push(start..end);
                from = end;
            }
        }
    }
}

const MIN_RUN: usize = 32;

/// The length of an AWS access key id.
const AWS_KEY_ID: usize = 20;

fn base64_runs(bytes: &[u8], spans: &mut Vec<Range<usize>>) {
    // `=` only pads the end: inside a run it separates a key from a value.
    let body = |byte: u8| is_base64(byte) && byte != b'=';
    for run in runs(bytes, body) {
        if let Some(run) = random_base64(bytes, run) {
            let padded_end = run_end(bytes, run.end, |byte| byte == b'=');
            spans.push(run.start..padded_end.min(run.end + 2));
        }
    }
}

/// The base64 body `run` of `bytes` without the separators at its ends, if
/// that looks random.
fn random_base64(bytes: &[u8], mut run: Range<usize>) -> Option<Range<usize>> {
    // Separators at the ends belong to the surroundings (`//`, `--`).
    while run.start < run.end && b"/+-_".contains(&bytes[run.start]) {
        run.start += 1;
    }
    while run.end > run.start && b"/-_".contains(&bytes[run.end - 1]) {
        run.end -= 1;
    }
    looks_random_base64(&bytes[run.clone()]).then_some(run)
}

fn looks_random_base64(run: &[u8]) -> bool {
    if run.len() < MIN_RUN {
        return false;
    }
    let has = |class: fn(&u8) -> bool| run.iter().any(class);
    if !(has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit)) {
        return false;
    }
    // Random text switches between upper case, lower case and digits about
    // two times in three; CamelCase words far less often.
    let class = |byte: u8| match byte {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let switches = run
        .windows(2)
        .filter(|pair| class(pair[0]) != class(pair[1]))
        .count();
    switches * 10 >= run.len() * 3 && bits_per_char(run) >= 4.0
}

fn hex_runs(bytes: &[u8], spans: &mut Vec<Range<usize>>) {
    for run in runs(bytes, |byte| byte.is_ascii_alphanumeric()) {
        if is_secret_hex(bytes, run.clone()) {
            spans.push(run);
        }
    }
}

/// Whether the alphanumeric `run` of `bytes` is a hex secret.
fn is_secret_hex(bytes: &[u8], run: Range<usize>) -> bool {
    let hex = &bytes[run.clone()];
    hex.len() >= MIN_RUN
        // SHA-1 and SHA-256 sizes: commit ids, digests, container ids.
        && hex.len() != 40
        && hex.len() != 64
        && hex.iter().all(u8::is_ascii_hexdigit)
        && hex.iter().any(u8::is_ascii_digit)
        && hex.iter().any(u8::is_ascii_alphabetic)
        && !follows_digest_prefix(bytes, run.start)
        && bits_per_char(hex) >= 3.0
}

/// Whether `bytes[..start]` ends in `sha<digits>:` or `md5:`.
fn follows_digest_prefix(bytes: &[u8], start: usize) -> bool {
    let Some(before) = start.checked_sub(1).map(|colon| &bytes[..colon]) else {
        return false;
    };
    if bytes[start - 1] != b':' {
        return false;
    }
    let algorithm = &before[run_start(before, |byte| byte.is_ascii_alphanumeric())..];
    algorithm.eq_ignore_ascii_case(b"md5")
        || (algorithm.len() > 3
            && algorithm[..3].eq_ignore_ascii_case(b"sha")
            && algorithm[3..].iter().all(u8::is_ascii_digit))
}

/// Byte classes for [`may_hold_secret`]. `WORD`: every byte any scanner's
/// finding is made of, bar the `=`, `~` and blanks after a key or `Bearer`:
/// `[A-Za-z0-9_.+/-]`.
const WORD: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
const DIGIT: u8 = 8;

const CLASSES: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < table.len() {
        table[byte] = match byte as u8 {
            b'A'..=b'Z' => WORD | UPPER,
            b'a'..=b'z' => WORD | LOWER,
            b'0'..=b'9' => WORD | DIGIT,
            b'_' | b'.' | b'+' | b'/' | b'-' => WORD,
            _ => 0,
        };
        byte += 1;
    }
    table
};

/// Whether any scanner could find something in `bytes`: `false` only when
/// none would (`scan` would return no span), in one pass over the bytes that
/// looks closer only at the words that could start or hold a finding.
///
/// Every finding lies in, or starts right after, a maximal run of `WORD`
/// bytes (a "word"), because none of the scanners' runs may cross a byte
/// outside `WORD`:
///
/// - a key/value secret: the word ends in a secret key name (which holds no
///   `+` or `/`, so it ends the scanner's key run too) and a separator
///   follows it — checked exactly with [`value_after_key`];
/// - a bearer token: the word ends in `bearer` with no alphanumeric byte just
///   before it, and a blank follows (the token itself is not checked);
/// - an AWS key id: a whole alphanumeric run of the word — checked exactly;
/// - a JWT: the word holds `eyJ` and is long enough for one (the rest is not
///   checked);
/// - a high-entropy run: a base64 body run (the word split at `.`) or an
///   alphanumeric run of the word — checked exactly.
fn may_hold_secret(bytes: &[u8]) -> bool {
    // The start of the current word, if `bytes[start]` is a `WORD` byte.
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if CLASSES[usize::from(byte)] == 0 {
            if worth_a_look(bytes, start..at) && word_may_hold_secret(bytes, start..at) {
                return true;
            }
            start = at + 1;
        }
    }
    let end = bytes.len();
    worth_a_look(bytes, start..end) && word_may_hold_secret(bytes, start..end)
}

/// A quick first look at `bytes[word]`, maybe empty, for
/// [`may_hold_secret`]: `false` when [`word_may_hold_secret`] would be.
#[inline(always)]
fn worth_a_look(bytes: &[u8], word: Range<usize>) -> bool {
    match word.len() {
        // Too short for a key name (`token`) or `bearer`.
        0..5 => false,
        // The short words that end like a key name or `bearer` (`| 0x20`
        // lowers the case of letters and makes no letter of another `WORD`
        // byte).
        5..AWS_KEY_ID => matches!(
            [bytes[word.end - 2] | 0x20, bytes[word.end - 1] | 0x20],
            [b'r' | b'w', b'd'] | [b'e', b'n' | b't' | b'y' | b'r']
        ),
        _ => true,
    }
}

/// [`may_hold_secret`] for one word, `bytes[word]`.
fn word_may_hold_secret(bytes: &[u8], word: Range<usize>) -> bool {
    let text = &bytes[word.clone()];
    let [.., second_last, last] = *text else {
        return false;
    };
    match [second_last.to_ascii_lowercase(), last.to_ascii_lowercase()] {
        // The last two letters of the names in `SECRET_KEYS`.
        [b'r' | b'w', b'd'] | [b'e', b'n' | b't' | b'y'] => {
            let names_a_secret = SECRET_KEYS.iter().any(|name| {
                text.len() >= name.len()
                    && text[text.len() - name.len()..].eq_ignore_ascii_case(name)
            });
            if names_a_secret && value_after_key(bytes, word.end).is_some() {
                return true;
            }
        }
        [b'e', b'r'] => {
            const BEARER: &[u8] = b"bearer";
            let bearer = text.len() >= BEARER.len()
                && text[text.len() - BEARER.len()..].eq_ignore_ascii_case(BEARER)
                && (text.len() == BEARER.len()
                    || !text[text.len() - BEARER.len() - 1].is_ascii_alphanumeric())
                && bytes.get(word.end).is_some_and(|&byte| is_blank(byte));
            if bearer {
                return true;
            }
        }
        _ => {}
    }
    const JWT: usize = 22; // `eyJ`, 10 + `.` + 10 + `.`
    if text.len() < AWS_KEY_ID {
        return false;
    }
    let classes = text
        .iter()
        .fold(0, |classes, &byte| classes | CLASSES[usize::from(byte)]);
    let alphanumeric_runs = || {
        runs(text, |byte| byte.is_ascii_alphanumeric())
            .map(|run| word.start + run.start..word.start + run.end)
    };
    let has = |class: u8| classes & class != 0;
    if has(UPPER) {
        let aws_key_id = |run: Range<usize>| {
            let id = &bytes[run];
            id.len() == AWS_KEY_ID
                && (id.starts_with(b"AKIA") || id.starts_with(b"ASIA"))
                && id[4..]
                    .iter()
                    .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
        };
        if alphanumeric_runs().any(aws_key_id) {
            return true;
        }
        if text.len() >= JWT && has(LOWER) && find(text, 0, b"eyJ").is_some() {
            return true;
        }
    }
    // Both kinds of high-entropy run hold a digit and a letter; base64 ones
    // upper and lower case letters.
    if text.len() < MIN_RUN || !has(DIGIT) {
        return false;
    }
    let base64 = has(UPPER)
        && has(LOWER)
        && runs(text, |byte| byte != b'.').any(|run| {
            random_base64(bytes, word.start + run.start..word.start + run.end).is_some()
        });
    base64 || alphanumeric_runs().any(|run| is_secret_hex(bytes, run))
}

/// Shannon entropy of `run` in bits per character.
fn bits_per_char(run: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &byte in run {
        counts[usize::from(byte)] += 1;
    }
    let length = run.len() as f64;
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / length;
            -p * p.log2()
        })
        .sum()
}

/// Sorts the spans, joins overlapping and touching ones, and widens any that
/// would cut a character in half (it cannot happen with the scanners above,
/// which start and stop at ASCII bytes, but slicing must never panic).
fn merge(text: &str, mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.retain(|span| span.start < span.end);
    spans.sort_by_key(|span| (span.start, span.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for mut span in spans {
        while !text.is_char_boundary(span.start) {
            span.start -= 1;
        }
        while !text.is_char_boundary(span.end) {
            span.end += 1;
        }
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// The maximal runs of bytes that satisfy `class`.
fn runs(bytes: &[u8], class: impl Fn(u8) -> bool + Copy) -> impl Iterator<Item = Range<usize>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !class(bytes[at]) {
            at += 1;
        }
        if at == bytes.len() {
            return None;
        }
        let start = at;
        at = run_end(bytes, start, class);
        Some(start..at)
    })
}

/// The end of the run of `class` bytes that starts at `from`.
fn run_end(bytes: &[u8], from: usize, class: impl Fn(u8) -> bool) -> usize {
    from + bytes.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|&&byte| class(byte)).count()
    })
}

/// The start of the run of `class` bytes that ends at the end of `bytes`.
fn run_start(bytes: &[u8], class: impl Fn(u8) -> bool) -> usize {
    bytes.len() - bytes.iter().rev().take_while(|&&byte| class(byte)).count()
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|offset| from + offset)
}

fn find_ignore_ascii_case(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
        .map(|offset| from + offset)
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

fn is_base64(byte: u8) -> bool {
    is_base64url(byte) || matches!(byte, b'+' | b'/' | b'=')
}

/// RFC 7235 `token68`, the characters of a bearer token.
fn is_token68(byte: u8) -> bool {
    is_base64(byte) || matches!(byte, b'.' | b'~')
}

fn is_key_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

#[cfg(test)]
mod tests;
