<#
.SYNOPSIS
  Undoes the other scripts: stops and removes hfcachefs logon tasks of the current user,
  the launcher registration (as administrator), and HF_HUB_CACHE where it points at one of
  the given mountpoints (or everywhere with -Force).
.EXAMPLE
  .\uninstall.ps1 -Mountpoint 'H:'
  .\uninstall.ps1 -All -Force          # every task, the launcher entry, the variables
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [string[]] $Mountpoint = @(),
    [switch] $All,
    [string] $Name = 'hfcachefs',
    [switch] $Force
)
$ErrorActionPreference = 'Stop'

# Logon tasks.
$tasks = Get-ScheduledTask -TaskPath '\hfcachefs\' -ErrorAction SilentlyContinue
foreach ($t in $tasks) {
    $tag = $t.TaskName -replace '^hfcachefs ', ''
    $wanted = $All -or ($Mountpoint | Where-Object { ($_ -replace '[:\\/ ]', '_').Trim('_') -eq $tag })
    if ($wanted -and $PSCmdlet.ShouldProcess($t.TaskName, 'stop and remove task')) {
        Stop-ScheduledTask -TaskPath '\hfcachefs\' -TaskName $t.TaskName -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -TaskPath '\hfcachefs\' -TaskName $t.TaskName -Confirm:$false
        Write-Output "removed task $($t.TaskName)"
    }
}

# Launcher registration (HKLM: administrators only).
$key = "HKLM:\SOFTWARE\WOW6432Node\WinFsp\Services\$Name"
if ($All -and (Test-Path $key)) {
    $principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
    if ($principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        if ($PSCmdlet.ShouldProcess($key, 'remove launcher registration')) {
            Remove-Item -Path $key -Recurse -Force
            Write-Output "removed launcher entry $Name (running instances: launchctl-x64.exe stop $Name <instance>)"
        }
    } else {
        Write-Warning "launcher entry $key left in place: run as administrator to remove it"
    }
}

# Environment variables.
foreach ($scope in 'User', 'Machine') {
    $v = [Environment]::GetEnvironmentVariable('HF_HUB_CACHE', $scope)
    if (-not $v) { continue }
    $ours = $Force -or ($Mountpoint | Where-Object { $v.TrimEnd('\').ToUpper().StartsWith($_.TrimEnd('\').ToUpper()) })
    if (-not $ours) { continue }
    if ($scope -eq 'Machine') {
        $principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
        if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
            Write-Warning "machine HF_HUB_CACHE=$v left in place: run as administrator to remove it"
            continue
        }
    }
    if ($PSCmdlet.ShouldProcess("$scope HF_HUB_CACHE=$v", 'remove')) {
        [Environment]::SetEnvironmentVariable('HF_HUB_CACHE', $null, $scope)
        [Environment]::SetEnvironmentVariable('HF_HUB_DISABLE_SYMLINKS_WARNING', $null, $scope)
        Write-Output "removed $scope HF_HUB_CACHE ($v)"
    }
}
