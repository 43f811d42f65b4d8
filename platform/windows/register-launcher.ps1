<#
.SYNOPSIS
  Registers hfcachefs with the WinFsp launcher service (machine-wide; run as administrator).
.DESCRIPTION
  Writes the launcher's service entry HKLM\SOFTWARE\WOW6432Node\WinFsp\Services\<Name> with
    Executable  = the hfcachefs.exe given
    CommandLine = mount --foreground [-o ro] %1 %2      (%1 = store, %2 = mountpoint)
    Security    = who may start and stop it (default: every user)
    JobControl  = 1
  Start a mount afterwards with
    launchctl-x64.exe start <Name> <instance> \\nas\share\hub H:
  and stop it with
    launchctl-x64.exe stop <Name> <instance>
  The launcher runs the file system as LocalSystem unless -RunAsLauncher is given: as
  LocalSystem it reaches the NAS as the computer account (DOMAIN\PC$), so the share must
  grant that account read (and write, for downloads) access. For per-user credentials prefer
  install-logon-task.ps1.
.EXAMPLE
  .\register-launcher.ps1 -Exe 'C:\Program Files\hfcachefs\hfcachefs.exe'
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $Exe,
    [string] $Name = 'hfcachefs',
    [switch] $ReadOnly,
    # SDDL of who may start/stop the service instances (default: everyone).
    [string] $Security = 'D:P(A;;RPWPLC;;;WD)',
    # Run the file system as the user who starts it ("." in the launcher's RunAs).
    [switch] $RunAsLauncher
)
$ErrorActionPreference = 'Stop'

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'Run this script as administrator (it writes HKLM).'
}
if (-not (Test-Path -LiteralPath $Exe -PathType Leaf)) { throw "no such file: $Exe" }
$Exe = (Resolve-Path -LiteralPath $Exe).Path

$key = "HKLM:\SOFTWARE\WOW6432Node\WinFsp\Services\$Name"
$cmd = if ($ReadOnly) { 'mount --foreground -o ro %1 %2' } else { 'mount --foreground %1 %2' }
if ($PSCmdlet.ShouldProcess($key, 'register hfcachefs with the WinFsp launcher')) {
    New-Item -Path $key -Force | Out-Null
    New-ItemProperty -Path $key -Name Executable -PropertyType String -Value $Exe -Force | Out-Null
    New-ItemProperty -Path $key -Name CommandLine -PropertyType String -Value $cmd -Force | Out-Null
    New-ItemProperty -Path $key -Name Security -PropertyType String -Value $Security -Force | Out-Null
    New-ItemProperty -Path $key -Name JobControl -PropertyType DWord -Value 1 -Force | Out-Null
    if ($RunAsLauncher) {
        New-ItemProperty -Path $key -Name RunAs -PropertyType String -Value '.' -Force | Out-Null
    } else {
        Remove-ItemProperty -Path $key -Name RunAs -ErrorAction SilentlyContinue
    }
    Write-Output "registered $Name -> $Exe $cmd"
    Write-Output "start:  launchctl-x64.exe start $Name hub \\nas\share\hub H:"
    Write-Output "stop:   launchctl-x64.exe stop $Name hub"
}
