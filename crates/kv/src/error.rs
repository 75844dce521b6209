//! Error replies, with Redis's exact texts.

/// An error reply to a command, at parse time or at apply time.
///
/// `Display` gives the text Redis sends after the `-` of a RESP error, word for
/// word, so clients and tests written against Redis see what they expect
/// (`ERR wrong number of arguments for 'get' command`, `WRONGTYPE ...`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The argument list was empty.
    #[error("ERR empty command")]
    Empty,
    /// The command name is not one this store knows.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The name as sent (at most 128 bytes, newlines made spaces).
        name: String,
        /// The first arguments, each quoted and followed by a space, as Redis prints them.
        args: String,
    },
    /// Too few or too many arguments; holds the lowercase command name.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(&'static str),
    /// An option is unknown, repeated in a conflicting way, or lacks its value.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument or a stored value is not a 64-bit signed integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// A count that must not be negative was negative.
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    /// An expiry is not positive (SET) or overflows when made absolute; holds the command name.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(&'static str),
    /// A SCAN cursor is not an unsigned integer.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// EXPIRE got NX together with XX, GT or LT.
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxConflict,
    /// EXPIRE got both GT and LT.
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtLtConflict,
    /// EXPIRE got an option it does not know; holds the option as sent.
    #[error("ERR Unsupported option {0}")]
    UnsupportedOption(String),
    /// The key holds a value of another type than the command works on.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// INCR, INCRBY, DECR, DECRBY or HINCRBY would leave the 64-bit range.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// DECRBY by `i64::MIN`, whose negation does not exist.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// HINCRBY on a field whose value is not an integer.
    #[error("ERR hash value is not an integer")]
    HashValueNotInteger,
    /// APPEND would make a string longer than [`Limits::string_len_max`](crate::Limits::string_len_max).
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// [`Store::read`](crate::Store::read) was given a command that writes; holds its name.
    #[error("ERR '{0}' is not a read-only command")]
    NotReadOnly(&'static str),
}

impl CommandError {
    /// The error for an unknown command, formatted as Redis does: the name and
    /// the first arguments (about 128 bytes of them), newlines replaced by spaces
    /// so the text stays a valid RESP simple error.
    pub fn unknown_command(args: &[bytes::Bytes]) -> CommandError {
        let name = args.first().map(|n| clean(&n[..n.len().min(128)])).unwrap_or_default();
        let mut listed = String::new();
        for arg in args.iter().skip(1) {
            if listed.len() >= 128 {
                break;
            }
            let room = 128 - listed.len();
            listed.push('\'');
            listed.push_str(&clean(&arg[..arg.len().min(room)]));
            listed.push_str("' ");
        }
        CommandError::UnknownCommand { name, args: listed }
    }
}

fn clean(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace(['\r', '\n'], " ")
}
