//! How an [`Error`] reads: the facts, in plain words, for each kind; no front's API.

use std::fmt;

use super::{Context, Error, ErrorKind};
use crate::header::{End, MESSAGE_TYPE};

/// A schema tag as the messages show it.
struct Tag<'a>(&'a Option<String>);

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "{t:?}"),
            None => f.write_str("no tag"),
        }
    }
}

/// An element description as the messages show it: `, described as '<f4'`, or nothing.
struct Described<'a>(&'a Option<String>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, ", described as {d}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            ErrorKind::EndTaken
            | ErrorKind::Closed
            | ErrorKind::Aborted
            | ErrorKind::PeerGone
            | ErrorKind::TimedOut
            | ErrorKind::Oversized
            | ErrorKind::EndClosed
            | ErrorKind::Forked
            | ErrorKind::PartialElement => self.fmt_call(f),
            _ => self.fmt_channel(f),
        }
    }
}

impl Error {
    /// The message of an error in opening, creating or removing a channel.
    fn fmt_channel(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let name = &r.channel;
        let source = r.source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        match (r.kind, &r.context) {
            (ErrorKind::InvalidName, Context::Invalid { reason, .. }) => {
                write!(f, "invalid channel name {name:?}: {reason}")
            }
            (ErrorKind::InvalidCapacity, Context::Invalid { value, reason }) => {
                write!(f, "channel '{name}': invalid capacity {value}: {reason}")
            }
            (ErrorKind::InvalidSchema, Context::Invalid { value, reason }) => {
                write!(
                    f,
                    "channel '{name}': invalid schema tag {value:?}: {reason}"
                )
            }
            (ErrorKind::InvalidDescr, Context::Invalid { value, reason }) => write!(
                f,
                "channel '{name}': invalid element description {value:?}: {reason}"
            ),
            (ErrorKind::UnsupportedElement, Context::Invalid { value, reason }) => write!(
                f,
                "channel '{name}': element type {value} is not supported: {reason}"
            ),
            (ErrorKind::AlreadyExists, Context::Path(p)) => {
                write!(f, "channel '{name}' already exists ({})", p.display())
            }
            (ErrorKind::NotFound, Context::Path(p)) => {
                write!(f, "channel '{name}' does not exist (no {})", p.display())
            }
            (ErrorKind::PermissionDenied, Context::Path(p)) => write!(
                f,
                "channel '{name}': permission denied on {}; it belongs to another user or its \
                 mode refuses this one",
                p.display()
            ),
            (ErrorKind::ForeignOwner, Context::Owner { owner, uid }) => write!(
                f,
                "channel '{name}' belongs to uid {owner}, not to this user (uid {uid})"
            ),
            (
                ErrorKind::ElementMismatch,
                Context::Element {
                    type_name,
                    expected_size,
                    expected_align,
                    expected_descr,
                    found_size,
                    found_align,
                    found_type,
                    found_descr,
                },
            ) => {
                if *type_name == MESSAGE_TYPE || *found_type == Some(MESSAGE_TYPE) {
                    // One side is a message channel: what each side holds, in words.
                    let what = |t: &str, descr: &Option<String>| match t {
                        MESSAGE_TYPE => "messages".to_string(),
                        t => format!("{t} elements{}", Described(descr)),
                    };
                    return write!(
                        f,
                        "channel '{name}' holds {}, but this side opens it for {}",
                        what(found_type.unwrap_or("record"), found_descr),
                        what(type_name, expected_descr),
                    );
                }
                write!(
                    f,
                    "channel '{name}' holds {} of {found_size} bytes aligned to \
                     {found_align}{}, but this side's element type {type_name} has \
                     {expected_size} bytes aligned to {expected_align}{}",
                    found_type.map_or("elements".to_string(), |t| format!("{t} elements")),
                    Described(found_descr),
                    Described(expected_descr),
                )
            }
            (ErrorKind::SchemaMismatch, Context::Schema { expected, found }) => write!(
                f,
                "channel '{name}' has schema tag {}, but this side expects {}",
                Tag(found),
                Tag(expected)
            ),
            (
                ErrorKind::CapacityMismatch,
                Context::Capacity {
                    requested,
                    rounded,
                    found,
                },
            ) => {
                write!(
                    f,
                    "channel '{name}' exists with capacity {found}, but this side asks for \
                     {requested}"
                )?;
                if rounded != requested {
                    write!(f, " ({rounded} once rounded up to whole pages)")?;
                }
                f.write_str(
                    "; open it without asking for a capacity to use it as it is, or remove it \
                     to create it anew",
                )
            }
            (ErrorKind::TooSmall, Context::TooSmall { path, size, needed }) => write!(
                f,
                "channel '{name}': segment {} has {size} bytes, fewer than the {needed} of a \
                 header",
                path.display()
            ),
            (ErrorKind::NotAChannel, Context::Path(p)) => write!(
                f,
                "channel '{name}': {} is not a shmchan segment",
                p.display()
            ),
            (ErrorKind::VersionMismatch, Context::Version { found, supported }) => write!(
                f,
                "channel '{name}' has layout version {found}; this build of shmchan reads \
                 version {supported}"
            ),
            (ErrorKind::AbiMismatch, Context::Version { found, supported }) => write!(
                f,
                "channel '{name}' was created by a build with ABI word {found:#x}; this \
                 build's is {supported:#x}"
            ),
            (ErrorKind::NotInitialized, _) => write!(
                f,
                "channel '{name}' is not initialised (its creator did not finish)"
            ),
            (ErrorKind::Corrupted, Context::Field { field, detail }) => {
                write!(f, "channel '{name}' is corrupted: {field}: {detail}")
            }
            (ErrorKind::NoSpace, Context::Space { bytes, dir }) => write!(
                f,
                "not enough shared memory for channel '{name}': {bytes} bytes do not fit in {} \
                 ({source}); free space there or ask for a smaller capacity; in a container, \
                 raise its size (docker run --shm-size)",
                dir.display()
            ),
            (ErrorKind::MembarrierUnavailable, _) => write!(
                f,
                "channel '{name}' needs membarrier(2), which this process cannot use \
                 ({source}); a channel created with fences instead works here"
            ),
            _ => self.fmt_other(f),
        }
    }

    /// The message of an error in a call of an end: claiming it, a put, a get.
    fn fmt_call(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let name = &r.channel;
        match (r.kind, &r.context) {
            (ErrorKind::EndTaken, Context::Holder { end, pid }) => {
                write!(f, "channel '{name}': the {end} end is held by ")?;
                match pid {
                    Some(p) => write!(f, "a live process (pid {p})"),
                    None => f.write_str("a live holder"),
                }
            }
            (ErrorKind::Closed, Context::ClosedBy(by)) => write!(
                f,
                "channel '{name}' was closed by its {by}; remove it and create a new one"
            ),
            (ErrorKind::Closed, _) if r.end == Some(End::Writer) => write!(
                f,
                "channel '{name}': the reader closed the channel; {} items of this put were \
                 accepted",
                r.done
            ),
            (ErrorKind::Closed, _) => write!(
                f,
                "channel '{name}': the writer closed the channel; {} items remain, {} were \
                 filled in",
                r.remaining, r.done
            ),
            (ErrorKind::Aborted, Context::Reason(reason)) => write!(
                f,
                "channel '{name}': the writer aborted: {reason}; {} items remain, {} were \
                 filled in",
                r.remaining, r.done
            ),
            (ErrorKind::PeerGone, _) if r.end == Some(End::Writer) => write!(
                f,
                "channel '{name}': the reader's process died; {} items of this put were \
                 accepted",
                r.done
            ),
            (ErrorKind::PeerGone, _) => write!(
                f,
                "channel '{name}': the writer's process died; {} items remain, {} were filled \
                 in",
                r.remaining, r.done
            ),
            (ErrorKind::TimedOut, Context::Path(p)) => write!(
                f,
                "channel '{name}': timed out waiting for it to be created ({})",
                p.display()
            ),
            (ErrorKind::TimedOut, _) if r.end == Some(End::Writer) => write!(
                f,
                "channel '{name}': timed out waiting for room; {} items of this put were \
                 accepted",
                r.done
            ),
            (ErrorKind::TimedOut, _) => write!(
                f,
                "channel '{name}': timed out; {} items are there, {} were filled in",
                r.remaining, r.done
            ),
            (
                ErrorKind::Oversized,
                Context::Limit {
                    requested,
                    capacity,
                },
            ) => write!(
                f,
                "channel '{name}': {requested} {} asked for at once, but the ring holds \
                 {capacity}",
                if r.end == Some(End::Writer) {
                    "slots"
                } else {
                    "items"
                }
            ),
            (ErrorKind::Oversized, Context::MessageLimit { len, max }) => write!(
                f,
                "channel '{name}': a message of {len} bytes, but the channel takes messages of \
                 at most {max} bytes"
            ),
            (ErrorKind::EndClosed, _) => write!(
                f,
                "channel '{name}': this {} is closed",
                r.end.unwrap_or(End::Writer)
            ),
            (
                ErrorKind::Forked,
                Context::Holder {
                    end,
                    pid: Some(pid),
                },
            ) => write!(
                f,
                "channel '{name}': this {end} belongs to process {pid}, which claimed it; this \
                 process inherited it through fork and cannot use it: open the channel by name \
                 in this process and claim an end of its own"
            ),
            (ErrorKind::Forked, _) => write!(
                f,
                "channel '{name}': this handle was opened by another process, and this \
                 process inherited it through fork; it cannot claim the {} here: open the \
                 channel by name in this process and claim an end of its own",
                r.end.unwrap_or(End::Writer)
            ),
            (ErrorKind::PartialElement, Context::Partial { len, element_size }) => write!(
                f,
                "channel '{name}': {len} bytes are not a whole number of {element_size}-byte \
                 elements"
            ),
            _ => self.fmt_other(f),
        }
    }

    /// The message of a system error, or of a kind with a context it is never built with.
    fn fmt_other(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.0;
        let name = &r.channel;
        let source = r.source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        match (r.kind, &r.context) {
            (_, Context::Op { op, path: Some(p) }) => {
                write!(f, "channel '{name}': {op} {}: {source}", p.display())
            }
            (_, Context::Op { op, path: None }) => write!(f, "channel '{name}': {op}: {source}"),
            // A kind with a context it is never built with: still say what is known.
            (kind, context) => {
                write!(f, "channel '{name}': {kind:?} in a {}", self.call())?;
                if *context != Context::None {
                    write!(f, " ({context:?})")?;
                }
                if r.source.is_some() {
                    write!(f, ": {source}")?;
                }
                Ok(())
            }
        }
    }
}
