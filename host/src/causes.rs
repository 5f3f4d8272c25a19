//! An error with its causes in one line, for logs: hyper's "client error
//! (Connect)" alone says little; with its causes it says "connection
//! refused".

/// `error` and its causes, `: `-separated, without repeating a cause that
/// its parent already printed.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
