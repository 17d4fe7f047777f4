//! regdrop: standing, encrypted register extracts delivered over SFTP.
