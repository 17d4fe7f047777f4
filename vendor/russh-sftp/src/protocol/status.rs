use thiserror::Error;

use super::{impl_packet_for, impl_request_id, Packet, RequestId};

/// Error Codes for SSH_FXP_STATUS.
///
/// Codes 0-8 are those of SFTP version 3; 9-31 are defined by the later drafts
/// (draft-ietf-secsh-filexfer-13 section 9.1) and are sent by many version-3 servers anyway
/// (ProFTPD sends 9 "Invalid handle" and 11 "File already exists"). Any other value is kept
/// as [`StatusCode::Unknown`] instead of failing the whole packet: a status the client does
/// not know is still an answer to its request.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// Indicates successful completion of the operation.
    #[error("Ok")]
    Ok,
    /// Indicates end-of-file condition; for SSH_FX_READ it means that no more data is available in the file,
    /// and for SSH_FX_READDIR it indicates that no more files are contained in the directory.
    #[error("Eof")]
    Eof,
    /// A reference is made to a file which should exist but doesn't.
    #[error("No such file")]
    NoSuchFile,
    /// Authenticated user does not have sufficient permissions to perform the operation.
    #[error("Permission denied")]
    PermissionDenied,
    /// A generic catch-all error message;
    /// it should be returned if an error occurs for which there is no more specific error code defined.
    #[error("Failure")]
    Failure,
    /// May be returned if a badly formatted packet or protocol incompatibility is detected.
    #[error("Bad message")]
    BadMessage,
    /// A pseudo-error which indicates that the client has no connection to the server
    /// (it can only be generated locally by the client, and MUST NOT be returned by servers).
    #[error("No connection")]
    NoConnection,
    /// A pseudo-error which indicates that the connection to the server has been lost
    /// (it can only be generated locally by the client, and MUST NOT be returned by servers).
    #[error("Connection lost")]
    ConnectionLost,
    /// Indicates that an attempt was made to perform an operation which is not supported for the server
    /// (it may be generated locally by the client if e.g. the version number exchange indicates that a required feature is not supported by the server,
    /// or it may be returned by the server if the server does not implement an operation).
    #[error("Operation unsupported")]
    OpUnsupported,
    /// 9: the handle value was invalid.
    #[error("Invalid handle")]
    InvalidHandle,
    /// 10: the file path does not exist or is invalid.
    #[error("No such path")]
    NoSuchPath,
    /// 11: the file already exists.
    #[error("File already exists")]
    FileAlreadyExists,
    /// 12: the file is on read-only media, or the media is write protected.
    #[error("Write protect")]
    WriteProtect,
    /// 13: no medium in the drive.
    #[error("No media")]
    NoMedia,
    /// 14: insufficient free space on the filesystem.
    #[error("No space on filesystem")]
    NoSpaceOnFilesystem,
    /// 15: the operation would exceed the user's storage quota.
    #[error("Quota exceeded")]
    QuotaExceeded,
    /// 16: a principal referenced by the request (owner, group, ACL) is unknown.
    #[error("Unknown principal")]
    UnknownPrincipal,
    /// 17: the file could not be opened because it is locked by another process.
    #[error("Lock conflict")]
    LockConflict,
    /// 18: the directory is not empty.
    #[error("Directory not empty")]
    DirNotEmpty,
    /// 19: the specified file is not a directory.
    #[error("Not a directory")]
    NotADirectory,
    /// 20: the filename is not valid.
    #[error("Invalid filename")]
    InvalidFilename,
    /// 21: too many symbolic links encountered.
    #[error("Link loop")]
    LinkLoop,
    /// 22: the file cannot be deleted.
    #[error("Cannot delete")]
    CannotDelete,
    /// 23: a parameter was out of range or otherwise invalid.
    #[error("Invalid parameter")]
    InvalidParameter,
    /// 24: the file is a directory and a file was expected.
    #[error("File is a directory")]
    FileIsADirectory,
    /// 25: a byte-range lock conflicts with the request.
    #[error("Byte range lock conflict")]
    ByteRangeLockConflict,
    /// 26: a byte-range lock request was refused.
    #[error("Byte range lock refused")]
    ByteRangeLockRefused,
    /// 27: an operation was attempted on a file for which a delete is pending.
    #[error("Delete pending")]
    DeletePending,
    /// 28: the file is corrupt; a filesystem integrity check should be run.
    #[error("File corrupt")]
    FileCorrupt,
    /// 29: the principal is not a valid owner for the file.
    #[error("Owner invalid")]
    OwnerInvalid,
    /// 30: the principal is not a valid group for the file.
    #[error("Group invalid")]
    GroupInvalid,
    /// 31: the requested operation could not be completed because no byte-range lock matched.
    #[error("No matching byte range lock")]
    NoMatchingByteRangeLock,
    /// Any other code a server sent (the value as received).
    #[error("Unknown status code {0}")]
    Unknown(u32),
}

const KNOWN: [StatusCode; 32] = [
    StatusCode::Ok,
    StatusCode::Eof,
    StatusCode::NoSuchFile,
    StatusCode::PermissionDenied,
    StatusCode::Failure,
    StatusCode::BadMessage,
    StatusCode::NoConnection,
    StatusCode::ConnectionLost,
    StatusCode::OpUnsupported,
    StatusCode::InvalidHandle,
    StatusCode::NoSuchPath,
    StatusCode::FileAlreadyExists,
    StatusCode::WriteProtect,
    StatusCode::NoMedia,
    StatusCode::NoSpaceOnFilesystem,
    StatusCode::QuotaExceeded,
    StatusCode::UnknownPrincipal,
    StatusCode::LockConflict,
    StatusCode::DirNotEmpty,
    StatusCode::NotADirectory,
    StatusCode::InvalidFilename,
    StatusCode::LinkLoop,
    StatusCode::CannotDelete,
    StatusCode::InvalidParameter,
    StatusCode::FileIsADirectory,
    StatusCode::ByteRangeLockConflict,
    StatusCode::ByteRangeLockRefused,
    StatusCode::DeletePending,
    StatusCode::FileCorrupt,
    StatusCode::OwnerInvalid,
    StatusCode::GroupInvalid,
    StatusCode::NoMatchingByteRangeLock,
];

impl StatusCode {
    /// The code's number on the wire.
    pub fn code(self) -> u32 {
        match self {
            StatusCode::Unknown(n) => n,
            known => KNOWN
                .iter()
                .position(|k| *k == known)
                .expect("every named code is in KNOWN") as u32,
        }
    }
}

impl From<u32> for StatusCode {
    fn from(n: u32) -> Self {
        KNOWN
            .get(n as usize)
            .copied()
            .unwrap_or(StatusCode::Unknown(n))
    }
}

impl From<StatusCode> for u32 {
    fn from(c: StatusCode) -> Self {
        c.code()
    }
}

impl serde::Serialize for StatusCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for StatusCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <u32 as serde::Deserialize>::deserialize(deserializer).map(StatusCode::from)
    }
}

/// Implementation for SSH_FXP_STATUS as defined in the specification draft
/// <https://datatracker.ietf.org/doc/html/draft-ietf-secsh-filexfer-02#section-7>
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub id: u32,
    pub status_code: StatusCode,
    pub error_message: String,
    pub language_tag: String,
}

impl_request_id!(Status);
impl_packet_for!(Status);
