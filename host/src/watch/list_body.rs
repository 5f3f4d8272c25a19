//! Splitting a Kubernetes list response into its items while it streams in.
//!
//! A page of `GET /api/v1/events?limit=500` can be hundreds of MiB when a
//! tenant creates large Events; reading it whole (and then parsing it whole)
//! got the pod OOM-killed. [`ListBody`] is fed the body chunk by chunk (e.g.
//! from `AsyncBufRead::fill_buf`/`consume`) and hands back the top-level
//! `metadata` and each element of `items` as raw bytes, one at a time, so
//! memory stays at one item (capped) plus a constant.
//!
//! It is a byte-level state machine, not a JSON parser: it checks only the
//! structure it relies on (one top-level object, `"key": value` members
//! separated by commas, `items` an array or `null`) and finds where each
//! value ends by tracking strings, escapes and a bracket *counter*, so depth
//! costs no stack and no memory. What is inside an item is judged later by
//! whoever parses the item (serde_json); for an invalid item the scanner still
//! terminates and never panics, but where it thinks the item ends is then
//! unspecified.
//!
//! Keys are matched on their raw bytes: only the exact spellings `"items"` and
//! `"metadata"` are recognised (an escaped spelling such as `"it\u0065ms"` is
//! treated as an unknown key and skipped, which the API server never sends). A
//! repeated key is handled each time it appears; a missing `items` is accepted
//! as an empty list; `metadata` is passed on whatever its JSON type (its
//! parser decides). Whitespace is JSON's four bytes only (no BOM).

/// What [`ListBody::feed`] hands back, in body order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The raw bytes of the top-level `metadata` value, exactly as in the body.
    Metadata(Vec<u8>),
    /// The exact bytes of one element of the top-level `items` array
    /// (without surrounding whitespace).
    Item(Vec<u8>),
    /// An element of `items` larger than the limit: its bytes were skipped,
    /// not buffered. `bytes` is its full size.
    TooLarge { bytes: usize },
}

/// Why a body is not a list response the scanner can split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListBodyError {
    /// A byte that cannot come next in a list response.
    #[error("malformed list body at byte {offset}: expected {expected}")]
    Malformed {
        offset: usize,
        expected: &'static str,
    },
    /// The body ended before the top-level object closed.
    #[error("list body ended early after {offset} bytes: expected {expected}")]
    UnexpectedEnd {
        offset: usize,
        expected: &'static str,
    },
    /// The top-level `metadata` is over the item limit; it is buffered whole,
    /// so it has to be capped too.
    #[error("list metadata at byte {offset} is larger than {limit} bytes")]
    MetadataTooLarge { offset: usize, limit: usize },
}

/// Splits a Kubernetes list response
/// (`{"kind":"EventList","apiVersion":"v1","metadata":{...},"items":[{...},{...}]}`)
/// into its items as they arrive, without holding the whole body.
#[derive(Debug)]
pub struct ListBody {
    max_item_bytes: usize,
    state: State,
    /// Which member the last key named; decides how its value is handled.
    field: Field,
    /// The value being scanned while `state` is [`State::InValue`].
    value: Value,
    /// Bytes fed before the current chunk, for error offsets.
    offset: usize,
    /// Once the body is known to be malformed, every later call says so again
    /// instead of scanning on from an undefined position.
    failed: Option<ListBodyError>,
}

/// Where the scanner is in the top-level structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    BeforeObject,
    /// Just after `{`: a key or `}`.
    ObjectOpen,
    /// Just after `,` between members: a key.
    KeyExpected,
    Colon,
    BeforeValue,
    /// After a member's value: `,` or `}`.
    AfterMember,
    /// Just after `items: [`: an element or `]`.
    ItemsOpen,
    /// Just after `,` between elements: an element.
    ItemExpected,
    AfterItem,
    /// Inside a value (key, member value or element); see [`ListBody::value`].
    InValue,
    Done,
}

impl State {
    fn expected(self) -> &'static str {
        match self {
            State::BeforeObject => "`{` opening the list object",
            State::ObjectOpen => "a key or `}`",
            State::KeyExpected => "a key",
            State::Colon => "`:` after the key",
            State::BeforeValue => "a value",
            State::AfterMember => "`,` or `}` after the member",
            State::ItemsOpen => "an item or `]`",
            State::ItemExpected => "an item",
            State::AfterItem => "`,` or `]` after the item",
            State::InValue => "the rest of the value",
            State::Done => "only whitespace after the list object",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Items,
    Metadata,
    Other,
}

/// What the value being scanned is, which decides how much of it is kept
/// and what happens when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A top-level key; kept just long enough to compare with `"metadata"`.
    Key,
    Metadata,
    /// `items: null`; kept to check it really is `null`.
    NullItems,
    Item,
    /// Any other member's value: scanned to its end, nothing kept.
    #[default]
    Skip,
}

/// One value being scanned: where it ends, and its bytes up to a cap.
#[derive(Debug, Default)]
struct Value {
    role: Role,
    /// Offset of its first byte in the body.
    start: usize,
    /// Its size so far, kept or not.
    len: usize,
    cap: usize,
    buf: Vec<u8>,
    /// It grew past `cap`: `buf` was dropped and stays empty.
    over: bool,
    scan: Scan,
}

impl Value {
    fn new(role: Role, start: usize, cap: usize, first: u8) -> Self {
        let scan = Scan {
            scalar: !matches!(first, b'"' | b'{' | b'['),
            ..Scan::default()
        };
        Value {
            role,
            start,
            cap,
            scan,
            ..Value::default()
        }
    }

    /// Keeps `bytes` while the value fits in `cap`; past it, frees what was
    /// kept and only counts.
    fn append(&mut self, bytes: &[u8]) {
        self.len = self.len.saturating_add(bytes.len());
        if self.over {
            return;
        }
        let need = self.buf.len().saturating_add(bytes.len());
        if need > self.cap {
            self.over = true;
            self.buf = Vec::new();
            return;
        }
        if need > self.buf.capacity() {
            // Grow geometrically but never past the cap, so an item just under
            // the limit does not cost twice the limit.
            let target = need
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.cap);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }
}

/// Finds where one JSON value ends. Strings and escapes are tracked so that
/// brackets and quotes inside strings do not count; nesting is a counter.
#[derive(Debug, Default)]
struct Scan {
    /// A number or literal: it ends before the first byte that cannot be
    /// part of one, which then belongs to the enclosing structure.
    scalar: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// Scans `bytes`, the continuation of the value; returns how many of
    /// them belong to it if it ends within them.
    fn advance(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.scalar {
            return bytes.iter().position(|&b| !is_scalar_byte(b));
        }
        for (n, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(n + 1);
                    }
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(n + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Bytes a JSON number or literal (`true`, `false`, `null`) is made of,
/// generously; the item's parser rejects bad ones.
fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

fn starts_value(b: u8) -> bool {
    matches!(
        b,
        b'"' | b'{' | b'[' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    )
}

fn malformed(offset: usize, expected: &'static str) -> ListBodyError {
    ListBodyError::Malformed { offset, expected }
}

impl ListBody {
    /// A scanner that buffers at most `max_item_bytes` of any one item (and
    /// of `metadata`).
    pub fn new(max_item_bytes: usize) -> Self {
        ListBody {
            max_item_bytes,
            state: State::BeforeObject,
            field: Field::Other,
            value: Value::default(),
            offset: 0,
            failed: None,
        }
    }

    /// Feeds the next chunk of the body; appends every piece completed by it
    /// to `out`. After an error, pieces completed earlier in the chunk are
    /// still in `out`, and every later call returns the same error.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Piece>) -> Result<(), ListBodyError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut i = 0;
        while i < chunk.len() {
            match self.step(chunk, i, out) {
                Ok(next) => i = next,
                Err(err) => {
                    self.failed = Some(err.clone());
                    return Err(err);
                }
            }
        }
        self.offset = self.offset.saturating_add(chunk.len());
        Ok(())
    }

    /// The body ended: errors if it was not one complete JSON object (or
    /// `items` never closed).
    pub fn finish(self) -> Result<(), ListBodyError> {
        match (self.failed, self.state) {
            (Some(err), _) => Err(err),
            (None, State::Done) => Ok(()),
            (None, state) => Err(ListBodyError::UnexpectedEnd {
                offset: self.offset,
                expected: state.expected(),
            }),
        }
    }

    /// Handles the input at `chunk[i]` and returns where to go on. A byte
    /// that starts a value is not consumed here but by the value's scan.
    fn step(
        &mut self,
        chunk: &[u8],
        i: usize,
        out: &mut Vec<Piece>,
    ) -> Result<usize, ListBodyError> {
        if self.state == State::InValue {
            return self.scan_value(chunk, i, out);
        }
        let Some(&b) = chunk.get(i) else {
            return Ok(chunk.len());
        };
        if is_ws(b) {
            return Ok(i + 1);
        }
        let at = self.offset + i;
        self.state = match (self.state, b) {
            (State::BeforeObject, b'{') => State::ObjectOpen,
            (State::ObjectOpen | State::AfterMember, b'}') => State::Done,
            (State::ObjectOpen | State::KeyExpected, b'"') => {
                return self.start(Role::Key, b, i, at);
            }
            (State::Colon, b':') => State::BeforeValue,
            (State::BeforeValue, _) => return self.start_member(b, i, at),
            (State::AfterMember, b',') => State::KeyExpected,
            (State::ItemsOpen | State::AfterItem, b']') => State::AfterMember,
            (State::ItemsOpen | State::ItemExpected, _) => return self.start(Role::Item, b, i, at),
            (State::AfterItem, b',') => State::ItemExpected,
            (state, _) => return Err(malformed(at, state.expected())),
        };
        Ok(i + 1)
    }

    /// Starts the value of the member whose key was just read.
    fn start_member(&mut self, b: u8, i: usize, at: usize) -> Result<usize, ListBodyError> {
        match (self.field, b) {
            (Field::Items, b'[') => {
                self.state = State::ItemsOpen;
                Ok(i + 1)
            }
            (Field::Items, b'n') => self.start(Role::NullItems, b, i, at),
            (Field::Items, _) => Err(malformed(at, "`[` or `null` as the value of `items`")),
            (Field::Metadata, _) => self.start(Role::Metadata, b, i, at),
            (Field::Other, _) => self.start(Role::Skip, b, i, at),
        }
    }

    fn start(&mut self, role: Role, b: u8, i: usize, at: usize) -> Result<usize, ListBodyError> {
        if !starts_value(b) {
            return Err(malformed(at, self.state.expected()));
        }
        let cap = match role {
            Role::Key => br#""metadata""#.len(),
            Role::NullItems => b"null".len(),
            Role::Metadata | Role::Item => self.max_item_bytes,
            Role::Skip => 0,
        };
        self.value = Value::new(role, at, cap, b);
        self.state = State::InValue;
        Ok(i)
    }

    /// Scans the current value from `chunk[i]` on, keeping what fits.
    fn scan_value(
        &mut self,
        chunk: &[u8],
        i: usize,
        out: &mut Vec<Piece>,
    ) -> Result<usize, ListBodyError> {
        let rest = chunk.get(i..).unwrap_or_default();
        let ends = self.value.scan.advance(rest);
        let end = i + ends.unwrap_or(rest.len());
        self.value.append(chunk.get(i..end).unwrap_or_default());
        if self.value.over && self.value.role == Role::Metadata {
            let (offset, limit) = (self.value.start, self.max_item_bytes);
            return Err(ListBodyError::MetadataTooLarge { offset, limit });
        }
        if ends.is_some() {
            self.end_value(out)?;
        }
        Ok(end)
    }

    fn end_value(&mut self, out: &mut Vec<Piece>) -> Result<(), ListBodyError> {
        let buf = std::mem::take(&mut self.value.buf);
        self.state = State::AfterMember;
        match self.value.role {
            Role::Key => {
                self.field = match buf.as_slice() {
                    br#""items""# => Field::Items,
                    br#""metadata""# => Field::Metadata,
                    _ => Field::Other,
                };
                self.state = State::Colon;
            }
            Role::Metadata => out.push(Piece::Metadata(buf)),
            Role::NullItems if buf != b"null" => {
                return Err(malformed(
                    self.value.start,
                    "`[` or `null` as the value of `items`",
                ));
            }
            Role::NullItems | Role::Skip => {}
            Role::Item => {
                self.state = State::AfterItem;
                out.push(if self.value.over {
                    Piece::TooLarge {
                        bytes: self.value.len,
                    }
                } else {
                    Piece::Item(buf)
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value as Json;
    use serde_json::value::RawValue;

    use super::*;

    /// Shaped like a kube-apiserver response (Go's encoder: compact, `<>&`
    /// escaped as `\u003c`...), with quotes, backslashes, brackets and
    /// non-ASCII text in strings.
    const EVENT_LIST: &str = r#"{"kind":"EventList","apiVersion":"v1","metadata":{"resourceVersion":"48213377","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTMzNzcsInN0YXJ0IjoiZGVmYXVsdC9uZ2lueC4xN2M0XHUwMDAwIn0","remainingItemCount":1207},"items":[{"metadata":{"name":"nginx-7d9f85c97d-xz2kp.17c4a3b2e1f0d9c8","namespace":"default","uid":"5f1e4c3a-9b2d-4e8f-a1c6-0d7b3e9f2a41","resourceVersion":"48213001","creationTimestamp":"2024-05-01T12:00:00Z","managedFields":[{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2024-05-01T12:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:count":{},"f:firstTimestamp":{},"f:involvedObject":{},"f:lastTimestamp":{},"f:message":{},"f:reason":{},"f:source":{"f:component":{},"f:host":{}},"f:type":{}}}]},"involvedObject":{"kind":"Pod","namespace":"default","name":"nginx-7d9f85c97d-xz2kp","uid":"0c2b8f4e-1d3a-4b5c-9e7f-6a8d2c4e1b30","apiVersion":"v1","resourceVersion":"48212950","fieldPath":"spec.containers{nginx}"},"reason":"BackOff","message":"Back-off pulling image \"registry.example.com/app:v1\": path C:\\data\\} not found ] \u003cnil\u003e \u0026 été — déjà vu 日本語 🚀","source":{"component":"kubelet","host":"node-1"},"firstTimestamp":"2024-05-01T12:00:00Z","lastTimestamp":"2024-05-01T12:05:00Z","count":42,"type":"Warning","eventTime":null,"reportingComponent":"kubelet","reportingInstance":"node-1"},{"metadata":{"name":"job-x.17c4a3b2e1f0d9c9","namespace":"batch","uid":"77e1c3a0-2b4d-4f6e-8a9c-1d3e5f7a9b2c","resourceVersion":"48213376","creationTimestamp":"2024-05-01T12:06:00Z"},"involvedObject":{"kind":"Job","namespace":"batch","name":"job-x"},"reason":"Completed","message":"ends with a backslash \\","source":{"component":"job-controller"},"count":1,"type":"Normal","eventTime":"2024-05-01T12:06:00.123456Z","series":{"count":3,"lastObservedTime":"2024-05-01T12:06:00.123456Z"},"reportingComponent":"job-controller","reportingInstance":"","x-weights":[-1.5E+3,0,1e-7,12345678901234567890,true,false,null,"\\\"",[],{}]},"just a string item",-0.25e+2,[[["]"]]]]}"#;

    /// Every body that must scan without error, for the split tests.
    fn valid_bodies() -> Vec<Vec<u8>> {
        let pretty = pretty(EVENT_LIST);
        let mut bodies: Vec<Vec<u8>> = [
            EVENT_LIST,
            &pretty,
            r#"{"items":[{"a":1}],"metadata":{"resourceVersion":"7"}}"#,
            r#"{"items":[]}"#,
            r#" { "items" : null , "metadata" : { } } "#,
            "{}",
            "\r\n\t{\n}\n",
            r#"{"kind":{"nested":[1,{"x":"}]\"\\"}],"y":[[[]]]},"n":-1.5e+3,"t":true,"f":false,"z":null,"itemsX":[{"no":1}],"items":[true,false,null,0,"é",{}]}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        bodies.push(b"{\"items\":[\"\xff\xfe\x80\",{\"k\":\"\xc3\"}]}".to_vec());
        bodies
    }

    fn pretty(body: &str) -> String {
        let value: Json = serde_json::from_str(body).expect("fixture parses");
        serde_json::to_string_pretty(&value).expect("serializes")
    }

    /// Feeds `chunks` in order, stopping at the first error, then finishes.
    fn run<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        max: usize,
    ) -> (Vec<Piece>, Result<(), ListBodyError>) {
        let mut scanner = ListBody::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(err) = scanner.feed(chunk, &mut out) {
                return (out, Err(err));
            }
        }
        let result = scanner.finish();
        (out, result)
    }

    fn run_whole(body: &[u8], max: usize) -> (Vec<Piece>, Result<(), ListBodyError>) {
        run([body], max)
    }

    /// What the pieces must be, from serde_json (`RawValue` keeps exact
    /// bytes). Order is checked within `items`; `metadata` separately.
    fn assert_matches_oracle(body: &[u8], pieces: &[Piece], max: usize) {
        let members: BTreeMap<String, &RawValue> =
            serde_json::from_slice(body).expect("oracle body is valid JSON");
        let items: Option<Vec<&RawValue>> = match members.get("items") {
            Some(raw) => serde_json::from_str(raw.get()).expect("items is an array or null"),
            None => None,
        };
        let expected_items: Vec<Piece> = items
            .unwrap_or_default()
            .iter()
            .map(|raw| match raw.get().len() {
                n if n > max => Piece::TooLarge { bytes: n },
                _ => Piece::Item(raw.get().as_bytes().to_vec()),
            })
            .collect();
        let got_items: Vec<Piece> = pieces
            .iter()
            .filter(|p| !matches!(p, Piece::Metadata(_)))
            .cloned()
            .collect();
        assert_eq!(got_items, expected_items);
        let expected_meta: Vec<Piece> = members
            .get("metadata")
            .map(|raw| Piece::Metadata(raw.get().as_bytes().to_vec()))
            .into_iter()
            .collect();
        let got_meta: Vec<Piece> = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Metadata(_)))
            .cloned()
            .collect();
        assert_eq!(got_meta, expected_meta);
    }

    fn item_json(piece: &Piece) -> Json {
        match piece {
            Piece::Item(bytes) => serde_json::from_slice(bytes).expect("item parses"),
            other => panic!("expected an item, got {other:?}"),
        }
    }

    #[test]
    fn real_event_list() {
        let (pieces, result) = run_whole(EVENT_LIST.as_bytes(), 1 << 20);
        result.expect("valid body");
        assert_matches_oracle(EVENT_LIST.as_bytes(), &pieces, 1 << 20);
        assert_eq!(pieces.len(), 6);
        let Piece::Metadata(meta) = &pieces[0] else {
            panic!("metadata comes first, got {:?}", pieces[0]);
        };
        let meta: Json = serde_json::from_slice(meta).expect("metadata parses");
        assert_eq!(meta["resourceVersion"], "48213377");
        assert!(
            meta["continue"]
                .as_str()
                .is_some_and(|c| c.starts_with("eyJ2"))
        );
        let first = item_json(&pieces[1]);
        assert_eq!(first["metadata"]["managedFields"][0]["manager"], "kubelet");
        let message = first["message"].as_str().expect("message is a string");
        assert!(message.contains(r#""registry.example.com/app:v1""#));
        assert!(message.contains(r"C:\data\} not found ] <nil> & été — déjà vu 日本語 🚀"));
        assert_eq!(item_json(&pieces[2])["message"], "ends with a backslash \\");
        assert_eq!(pieces[4], Piece::Item(b"-0.25e+2".to_vec()));
        assert_eq!(pieces[5], Piece::Item(br#"[[["]"]]]"#.to_vec()));
    }

    #[test]
    fn pretty_printed_list_has_trimmed_items() {
        let body = pretty(EVENT_LIST);
        let (pieces, result) = run_whole(body.as_bytes(), 1 << 20);
        result.expect("valid body");
        assert_matches_oracle(body.as_bytes(), &pieces, 1 << 20);
        // serde_json sorts keys: `items` comes before `metadata`.
        assert!(matches!(pieces.last(), Some(Piece::Metadata(_))));
        for piece in &pieces {
            let (Piece::Item(b) | Piece::Metadata(b)) = piece else {
                continue;
            };
            assert!(!b.first().is_some_and(|&c| is_ws(c)) && !b.last().is_some_and(|&c| is_ws(c)));
        }
    }

    #[test]
    fn all_valid_bodies_match_oracle() {
        for body in valid_bodies() {
            let (pieces, result) = run_whole(&body, 1 << 20);
            assert_eq!(result, Ok(()), "{}", String::from_utf8_lossy(&body));
            if std::str::from_utf8(&body).is_ok() {
                assert_matches_oracle(&body, &pieces, 1 << 20);
            }
        }
    }

    #[test]
    fn every_split_position_gives_the_same_pieces() {
        for max in [1 << 20, 40] {
            for body in valid_bodies() {
                let whole = run_whole(&body, max);
                for at in 0..=body.len() {
                    let (a, b) = body.split_at(at);
                    assert_eq!(run([a, b], max), whole, "split at {at}");
                }
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_pieces() {
        for max in [1 << 20, 40] {
            for body in valid_bodies() {
                assert_eq!(run(body.chunks(1), max), run_whole(&body, max));
            }
        }
    }

    #[test]
    fn items_before_metadata() {
        let body = br#"{"items":[{"a":"]"},{"b":[1]}],"kind":"EventList","metadata":{"resourceVersion":"9","continue":""}}"#;
        let (pieces, result) = run_whole(body, 1024);
        result.expect("valid body");
        assert_eq!(
            pieces,
            [
                Piece::Item(br#"{"a":"]"}"#.to_vec()),
                Piece::Item(br#"{"b":[1]}"#.to_vec()),
                Piece::Metadata(br#"{"resourceVersion":"9","continue":""}"#.to_vec()),
            ]
        );
    }

    #[test]
    fn empty_null_and_missing_items() {
        for body in [
            r#"{"items":[]}"#,
            r#"{"items": [ ] }"#,
            r#"{"items":null}"#,
            r#"{"kind":"EventList","items" :null,"apiVersion":"v1"}"#,
            "{}",
        ] {
            assert_eq!(run_whole(body.as_bytes(), 16), (vec![], Ok(())), "{body}");
        }
    }

    #[test]
    fn deeply_nested_item() {
        const DEPTH: usize = 100_000;
        let nested = format!("{}{}", "[{\"a\":".repeat(DEPTH), "}]".repeat(DEPTH));
        let nested = nested.replace(":}", ":0}");
        let body = format!(r#"{{"items":[{nested},{{"next":"]}}"}}]}}"#);
        let expected = vec![
            Piece::Item(nested.clone().into_bytes()),
            Piece::Item(br#"{"next":"]}"}"#.to_vec()),
        ];
        assert_eq!(
            run_whole(body.as_bytes(), usize::MAX),
            (expected.clone(), Ok(()))
        );
        assert_eq!(
            run(body.as_bytes().chunks(1), usize::MAX),
            (expected, Ok(()))
        );
        let limited = vec![
            Piece::TooLarge {
                bytes: nested.len(),
            },
            Piece::Item(br#"{"next":"]}"}"#.to_vec()),
        ];
        assert_eq!(run(body.as_bytes().chunks(7), 1000), (limited, Ok(())));
    }

    #[test]
    fn item_over_limit_is_skipped_and_next_is_intact() {
        let big = format!(r#"{{"message":"{}","x":["]"]}}"#, r#"\"}]"#.repeat(250));
        let body = format!(r#"{{"items":[ {big} , {{"small":"ok"}} ],"metadata":{{}}}}"#);
        let expected = vec![
            Piece::TooLarge { bytes: big.len() },
            Piece::Item(br#"{"small":"ok"}"#.to_vec()),
            Piece::Metadata(b"{}".to_vec()),
        ];
        for at in 0..=body.len() {
            let (a, b) = body.as_bytes().split_at(at);
            assert_eq!(run([a, b], 64), (expected.clone(), Ok(())), "split at {at}");
        }
        assert_eq!(run(body.as_bytes().chunks(1), 64), (expected, Ok(())));
    }

    #[test]
    fn limit_is_inclusive_and_buffer_stays_within_it() {
        let item = format!(r#""{}""#, "x".repeat(998));
        let body = format!(r#"{{"items":[{item}]}}"#);
        let (pieces, result) = run(body.as_bytes().chunks(1), 1000);
        result.expect("valid body");
        let [Piece::Item(bytes)] = pieces.as_slice() else {
            panic!("one item expected, got {pieces:?}");
        };
        assert_eq!(bytes, item.as_bytes());
        assert!(bytes.capacity() <= 1000, "capacity {}", bytes.capacity());
        let (pieces, _) = run_whole(body.as_bytes(), 999);
        assert_eq!(pieces, [Piece::TooLarge { bytes: 1000 }]);
    }

    #[test]
    fn metadata_over_limit_is_an_error() {
        let body = br#"{"kind":"EventList","metadata":{"resourceVersion":"123456789"},"items":[]}"#;
        let err = ListBodyError::MetadataTooLarge {
            offset: 31,
            limit: 16,
        };
        assert_eq!(run_whole(body, 16), (vec![], Err(err.clone())));
        assert_eq!(run(body.chunks(1), 16), (vec![], Err(err)));
    }

    #[test]
    fn unknown_keys_and_escaped_key_spellings_are_skipped() {
        let body = br#"{"kind":"EventList","x":{"a":[1,{"b":"}]\"[{"}],"c":{"d":{}}},"itemsX":[1],"it\u0065ms":[2],"metadat":{},"":[],"items":[3],"y":[[["\\"]]],"z":-0,"w":1E-5}"#;
        assert_eq!(
            run_whole(body, 64),
            (vec![Piece::Item(b"3".to_vec())], Ok(()))
        );
    }

    #[test]
    fn invalid_utf8_in_strings_passes_through() {
        let body = b"{\"items\":[\"\xff\xfe\\\"\x80\",{\"\xc3\":\"\xe6\x97\"}]}";
        let expected = vec![
            Piece::Item(b"\"\xff\xfe\\\"\x80\"".to_vec()),
            Piece::Item(b"{\"\xc3\":\"\xe6\x97\"}".to_vec()),
        ];
        assert_eq!(run(body.chunks(1), 64), (expected, Ok(())));
    }

    fn malformed_at(offset: usize, expected: &'static str) -> ListBodyError {
        ListBodyError::Malformed { offset, expected }
    }

    #[test]
    fn malformed_bodies_are_errors_with_offsets() {
        let items_value = "`[` or `null` as the value of `items`";
        let cases: Vec<(&[u8], ListBodyError)> = vec![
            (b"[]", malformed_at(0, "`{` opening the list object")),
            (b"  x", malformed_at(2, "`{` opening the list object")),
            (br#"{"items" []}"#, malformed_at(9, "`:` after the key")),
            (br#"{"items":[1,]}"#, malformed_at(12, "an item")),
            (
                br#"{"items":[1 2]}"#,
                malformed_at(12, "`,` or `]` after the item"),
            ),
            (
                br#"{"items":[1}"#,
                malformed_at(11, "`,` or `]` after the item"),
            ),
            (br#"{"items":{}}"#, malformed_at(9, items_value)),
            (br#"{"items":nul}"#, malformed_at(9, items_value)),
            (br#"{"items":nulls}"#, malformed_at(9, items_value)),
            (br#"{"items":"x"}"#, malformed_at(9, items_value)),
            (
                br#"{"a":1}}"#,
                malformed_at(7, "only whitespace after the list object"),
            ),
            (
                br#"{"a":1} {}"#,
                malformed_at(8, "only whitespace after the list object"),
            ),
            (br#"{,}"#, malformed_at(1, "a key or `}`")),
            (br#"{"a"}"#, malformed_at(4, "`:` after the key")),
            (br#"{"a":}"#, malformed_at(5, "a value")),
            (br#"{"a":1,}"#, malformed_at(7, "a key")),
            (
                br#"{"a":1 "b":2}"#,
                malformed_at(7, "`,` or `}` after the member"),
            ),
            (br#"{a:1}"#, malformed_at(1, "a key or `}`")),
            (br#"{"a":x}"#, malformed_at(5, "a value")),
            (
                br#"{"a":1]"#,
                malformed_at(6, "`,` or `}` after the member"),
            ),
            (
                br#"{"items":[]]}"#,
                malformed_at(11, "`,` or `}` after the member"),
            ),
            (br#"{"items":[}]}"#, malformed_at(10, "an item or `]`")),
        ];
        for (body, err) in cases {
            let text = String::from_utf8_lossy(body);
            assert_eq!(run_whole(body, 64).1, Err(err.clone()), "{text}");
            assert_eq!(run(body.chunks(1), 64).1, Err(err.clone()), "{text}");
            assert!(err.to_string().contains(&format!(
                "byte {}",
                match err {
                    ListBodyError::Malformed { offset, .. } => offset,
                    _ => unreachable!(),
                }
            )));
        }
    }

    #[test]
    fn truncated_bodies_are_errors() {
        assert_eq!(
            run_whole(b"", 64).1,
            Err(ListBodyError::UnexpectedEnd {
                offset: 0,
                expected: "`{` opening the list object"
            })
        );
        assert_eq!(
            run_whole(br#"{"items":[{"a":"}"#, 64).1,
            Err(ListBodyError::UnexpectedEnd {
                offset: 17,
                expected: "the rest of the value"
            })
        );
        let body = EVENT_LIST.as_bytes();
        for end in 0..body.len() {
            let (pieces, result) = run_whole(&body[..end], 1 << 20);
            assert!(
                matches!(result, Err(ListBodyError::UnexpectedEnd { offset, .. }) if offset == end),
                "prefix of {end} bytes: {result:?}"
            );
            assert!(pieces.len() <= 6);
        }
    }

    #[test]
    fn errors_are_sticky() {
        let mut scanner = ListBody::new(64);
        let mut out = Vec::new();
        let err = scanner
            .feed(br#"{"items":[1,]"#, &mut out)
            .expect_err("trailing comma");
        assert_eq!(out, [Piece::Item(b"1".to_vec())]);
        assert_eq!(scanner.feed(b"2]}", &mut out), Err(err.clone()));
        assert_eq!(scanner.finish(), Err(err));
    }

    /// xorshift64*: enough randomness for tests without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
            &from[self.below(from.len())]
        }

        /// Random chunk sizes: mostly tiny, sometimes large.
        fn chunks<'a>(&mut self, body: &'a [u8]) -> Vec<&'a [u8]> {
            let mut rest = body;
            let mut chunks = Vec::new();
            let biggest = *self.pick(&[1, 3, 16, 200, usize::MAX - 1]);
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at((1 + self.below(biggest)).min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            chunks
        }
    }

    fn random_string(rng: &mut Rng) -> String {
        const CHARS: &[char] = &[
            'a', 'Z', '0', '"', '\\', '/', '\n', '\t', '\u{1}', '\u{1f}', 'é', '日', '😀', '}',
            ']', '{', '[', ',', ':', ' ', '\u{7f}', '\u{2028}', 'u',
        ];
        (0..rng.below(12)).map(|_| *rng.pick(CHARS)).collect()
    }

    fn random_json(rng: &mut Rng, depth: usize) -> Json {
        match rng.below(if depth >= 5 { 5 } else { 7 }) {
            0 => Json::Null,
            1 => Json::Bool(rng.below(2) == 0),
            2 => Json::from(rng.next() as i64 >> rng.below(64)),
            3 => Json::from((rng.next() as i32) as f64 / 8.0),
            4 => Json::String(random_string(rng)),
            5 => (0..rng.below(5))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
            _ => (0..rng.below(5))
                .map(|_| (random_string(rng), random_json(rng, depth + 1)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    fn random_ws(rng: &mut Rng) -> &'static str {
        const SPACES: &[&str] = &["", "", "", " ", "\n  ", "\t", "\r\n"];
        SPACES[rng.below(SPACES.len())]
    }

    fn to_text(rng: &mut Rng, value: &Json) -> String {
        let text = match rng.below(3) {
            0 => serde_json::to_string_pretty(value),
            _ => serde_json::to_string(value),
        };
        text.expect("serializes")
    }

    /// A list body with `items` (and metadata and unknown members) in random
    /// order and spacing; returns it with the item texts.
    fn random_body(rng: &mut Rng) -> (String, Json, Vec<(String, Json)>) {
        let items: Vec<Json> = (0..rng.below(6)).map(|_| random_json(rng, 0)).collect();
        let items: Vec<(String, Json)> = items.into_iter().map(|v| (to_text(rng, &v), v)).collect();
        let metadata = serde_json::json!({"resourceVersion": rng.next().to_string(), "continue": random_string(rng)});
        let array = items
            .iter()
            .map(|(t, _)| format!("{}{t}{}", random_ws(rng), random_ws(rng)));
        let array = format!("[{}]", array.collect::<Vec<_>>().join(","));
        let mut members = vec![
            ("\"items\"".to_string(), array),
            ("\"metadata\"".to_string(), to_text(rng, &metadata)),
            ("\"kind\"".to_string(), "\"EventList\"".to_string()),
        ];
        for _ in 0..rng.below(3) {
            let key = serde_json::to_string(&random_string(rng)).expect("serializes");
            let value = random_json(rng, 0);
            members.push((format!("\"x{}", &key[1..]), to_text(rng, &value)));
        }
        for i in (1..members.len()).rev() {
            members.swap(i, rng.below(i + 1));
        }
        let members: Vec<String> = members
            .iter()
            .map(|(k, v)| {
                let ws: [&str; 4] = std::array::from_fn(|_| random_ws(rng));
                format!("{}{k}{}:{}{v}{}", ws[0], ws[1], ws[2], ws[3])
            })
            .collect();
        let (before, after) = (random_ws(rng), random_ws(rng));
        let body = format!("{before}{{{}}}{after}", members.join(","));
        (body, metadata, items)
    }

    #[test]
    fn random_items_round_trip_under_random_chunking() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let (body, metadata, items) = random_body(&mut rng);
            let (pieces, result) = run(rng.chunks(body.as_bytes()), usize::MAX);
            assert_eq!(result, Ok(()), "{body}");
            let mut got_items = Vec::new();
            for piece in &pieces {
                match piece {
                    Piece::Metadata(m) => {
                        assert_eq!(serde_json::from_slice::<Json>(m).expect("parses"), metadata);
                    }
                    Piece::Item(bytes) => got_items.push(bytes),
                    Piece::TooLarge { .. } => panic!("no limit was set"),
                }
            }
            assert_eq!(got_items.len(), items.len(), "{body}");
            for (got, (text, value)) in got_items.iter().zip(&items) {
                assert_eq!(got.as_slice(), text.as_bytes());
                assert_eq!(
                    &serde_json::from_slice::<Json>(got).expect("item parses"),
                    value
                );
            }
        }
    }

    /// Chunking must never change the outcome, even for broken input.
    fn assert_chunking_independent(rng: &mut Rng, body: &[u8]) {
        let max = *rng.pick(&[0, 8, 64, usize::MAX]);
        let whole = run_whole(body, max);
        assert_eq!(
            run(rng.chunks(body), max),
            whole,
            "{}",
            String::from_utf8_lossy(body)
        );
    }

    #[test]
    fn random_garbage_never_panics() {
        const ALPHABET: &[u8] = b"{}[]\"\\:, \nntrue0-1e.items\"metadata\"\xff\xc3";
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let len = rng.below(64);
            let body: Vec<u8> = match rng.below(3) {
                0 => (0..len).map(|_| rng.next() as u8).collect(),
                _ => (0..len).map(|_| *rng.pick(ALPHABET)).collect(),
            };
            assert_chunking_independent(&mut rng, &body);
        }
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let mut rng = Rng(7);
        let fixtures = valid_bodies();
        for round in 0..5000 {
            let mut body = match round % 2 {
                0 => rng.pick(&fixtures).clone(),
                _ => random_body(&mut rng).0.into_bytes(),
            };
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(body.len() + 1);
                let byte = *rng.pick(b"{}[]\",:\\ n0x\xff");
                match rng.below(3) {
                    0 => body.insert(at, byte),
                    1 if at < body.len() => body[at] = byte,
                    _ if at < body.len() => drop(body.remove(at)),
                    _ => body.truncate(at),
                }
            }
            assert_chunking_independent(&mut rng, &body);
        }
    }
}
