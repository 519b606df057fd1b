# BYOD Agent Windows snapshot, schema 1 (contract: docs/windows-snapshot.md).
# One call gathers every fact the posture checks need and prints ONE UTF-8 JSON object on stdout.
# Only locale-independent sources: registry values, CIM properties, COM numbers/booleans.
# Runs on Windows PowerShell 5.1 and PowerShell 7, without admin rights.
# windows_snapshot.py strips comment-only lines and indentation before it encodes this file,
# so comments cost nothing on the command line; never put '#' first on a line inside a string.

# Constrained Language mode (App Control / WDAC, Smart App Control on Windows 11 Home, AppLocker)
# blocks the .NET and COM calls below. Say so in one line that needs nothing but strings, first.
if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
    '{"schema":1,"language_mode":"' + [string]$ExecutionContext.SessionState.LanguageMode + '"}'
    exit 0
}
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Only error text goes through the console encoding (the JSON is written as bytes below); a process
# without a console cannot set it, which must not stop the snapshot.
try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) } catch { }
# Windows PowerShell 5.1 adds a Count property to System.Array that makes ConvertTo-Json write
# some arrays as {"value":[...],"Count":n}; dropping that type data keeps arrays plain.
if ($PSVersionTable.PSVersion.Major -lt 6) {
    Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
}
$Inv = [System.Globalization.CultureInfo]::InvariantCulture

# How long each section took (milliseconds), so a slow home PC shows where the time goes.
$Timings = [ordered]@{}
function Get-Section([string]$Name, [scriptblock]$Body) {
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    try { $r = (& $Body) } catch { $r = [ordered]@{ error = [string]$_.Exception.Message } }
    $Timings[$Name] = [int]$sw.ElapsedMilliseconds
    return $r
}

# ISO-8601 UTC text. $AssumeUtc: the source hands UTC with DateTimeKind Unspecified (COM DATE).
function ConvertTo-IsoUtc($Value, [switch]$AssumeUtc) {
    if ($null -eq $Value -or $Value -isnot [datetime]) { return $null }
    $d = [datetime]$Value
    if ($d.Year -lt 1970) { return $null }
    if ($AssumeUtc -and $d.Kind -eq [System.DateTimeKind]::Unspecified) {
        $d = [datetime]::SpecifyKind($d, [System.DateTimeKind]::Utc)
    }
    return $d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", $Inv)
}

# Registry values through .NET, always the 64-bit view (a 32-bit host would otherwise be
# redirected to WOW6432Node). A missing key or value is $null, never omitted.
function Open-RegKey([Microsoft.Win32.RegistryHive]$Hive, [string]$Path) {
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($Hive, [Microsoft.Win32.RegistryView]::Registry64)
    return $base.OpenSubKey($Path)
}
function Get-RegValues([Microsoft.Win32.RegistryHive]$Hive, [string]$Path, [string[]]$Names) {
    $key = Open-RegKey $Hive $Path
    $out = [ordered]@{}
    foreach ($n in $Names) {
        if ($null -eq $key) { $out[$n] = $null } else { $out[$n] = $key.GetValue($n, $null) }
    }
    if ($null -ne $key) { $key.Close() }
    return $out
}
# Security Center keeps the entry of an uninstalled product: does the program it names exist?
# $null when there is nothing to test (Defender's windowsdefender:// pseudo path, no path).
function Test-ProductExe([string]$Path) {
    if (-not $Path -or $Path -like 'windowsdefender:*') { return $null }
    $p = [Environment]::ExpandEnvironmentVariables($Path).Trim().Trim('"')
    try { return [bool](Test-Path -LiteralPath $p -PathType Leaf) } catch { return $null }
}
$HKLM = [Microsoft.Win32.RegistryHive]::LocalMachine
$HKCU = [Microsoft.Win32.RegistryHive]::CurrentUser

# A UAC-filtered admin token is not elevated: IsInRole answers for the token we run with.
$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
$elevated = $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)

$snap = [ordered]@{
    schema = 1
    collected_at = ConvertTo-IsoUtc ([datetime]::UtcNow)
    elevated = [bool]$elevated
}

$snap.os = Get-Section 'os' {
    Get-RegValues $HKLM 'SOFTWARE\Microsoft\Windows NT\CurrentVersion' @(
        'CurrentBuildNumber', 'UBR', 'EditionID', 'DisplayVersion', 'ProductName', 'InstallationType')
}

$snap.updates = Get-Section 'updates' {
    $s = [ordered]@{}
    $s.wuauserv_start = (Get-RegValues $HKLM 'SYSTEM\CurrentControlSet\Services\wuauserv' @('Start')).Start
    $s.no_auto_update = (Get-RegValues $HKLM 'SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU' @('NoAutoUpdate')).NoAutoUpdate
    $rr = Open-RegKey $HKLM 'SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'
    $s.reboot_required = ($null -ne $rr)
    if ($null -ne $rr) { $rr.Close() }
    # IUpdateSearcher::QueryHistory(start, count), newest first; bounded to 100 entries for speed.
    # Fields: Date, Operation (1 install, 2 uninstall), ResultCode (OperationResultCode: 2 succeeded,
    # 3 succeeded with errors, 4 failed, 5 aborted), Title. API: MicrosoftDocs/sdk-api
    # sdk-api-src/content/wuapi/nf-wuapi-iupdatesearcher-queryhistory.md; same calls in
    # BanterBoy/scripts-blog PowerShell/Factory/Get-WindowsUpdatesInstalled.ps1.
    # WUA hands DATE values in UTC with DateTimeKind Unspecified, hence -AssumeUtc.
    $s.history = $null
    try {
        $searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()
        $count = [Math]::Min([int]$searcher.GetTotalHistoryCount(), 100)
        $list = New-Object System.Collections.ArrayList
        if ($count -gt 0) {
            foreach ($e in $searcher.QueryHistory(0, $count)) {
                [void]$list.Add([ordered]@{
                    date = ConvertTo-IsoUtc $e.Date -AssumeUtc
                    operation = [int]$e.Operation
                    result_code = [int]$e.ResultCode
                    title = [string]$e.Title
                })
            }
        }
        $s.history = $list.ToArray()
    } catch { $s.history_error = [string]$_.Exception.Message }
    $s
}

$snap.bitlocker = Get-Section 'bitlocker' {
    $s = [ordered]@{}
    # The environment may be trimmed by the caller: fall back to the System folder's root.
    $sys = $env:SystemDrive
    if (-not $sys) { $sys = [System.IO.Path]::GetPathRoot([Environment]::GetFolderPath('System')).TrimEnd('\') }
    $prof = $env:USERPROFILE
    if (-not $prof) { $prof = [Environment]::GetFolderPath('UserProfile') }
    $s.system_drive = $sys.ToUpperInvariant()
    $s.profile_drive = [System.IO.Path]::GetPathRoot($prof).TrimEnd('\').ToUpperInvariant()
    # Shell property System.Volume.BitLockerProtection needs no admin and also covers Home
    # "device encryption": 1 on, 2 off, 3 encrypting, 4 decrypting, 5 suspended, 6 locked, null n/a.
    # Seen in Rectify11/Installer Rectify11Installer/Core/BitlockerHelper.cs (1, 3, 5 = on) and as
    # NameSpace(drive).Self.ExtendedProperty(...) in many audit scripts; NameSpace(17) is "This PC"
    # and ParseName('D:') addresses a drive there (eject scripts do the same).
    $shell = New-Object -ComObject Shell.Application
    $computer = $shell.NameSpace(17)
    $prot = [ordered]@{}
    foreach ($d in (@($s.system_drive, $s.profile_drive) | Select-Object -Unique)) {
        $v = $null
        try {
            $item = $computer.ParseName($d + '\')
            if ($null -eq $item) { $item = $shell.NameSpace($d + '\').Self }
            $v = $item.ExtendedProperty('System.Volume.BitLockerProtection')
        } catch { $v = $null }
        if ($null -ne $v -and "$v" -ne '') { $prot[$d] = [int]$v } else { $prot[$d] = $null }
    }
    $s.shell_protection = $prot
    # Win32_EncryptableVolume (root\CIMV2\Security\MicrosoftVolumeEncryption) answers admins only.
    $s.wmi = $null
    if ($elevated) {
        try {
            $vols = New-Object System.Collections.ArrayList
            $q = Get-CimInstance -Namespace 'root\CIMV2\Security\MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume
            foreach ($v in $q) {
                [void]$vols.Add([ordered]@{
                    DriveLetter = $v.DriveLetter
                    ProtectionStatus = $v.ProtectionStatus
                    ConversionStatus = $v.ConversionStatus
                    EncryptionMethod = $v.EncryptionMethod
                })
            }
            $s.wmi = $vols.ToArray()
        } catch { $s.wmi_error = [string]$_.Exception.Message }
    }
    $s
}

$snap.antivirus = Get-Section 'antivirus' {
    $s = [ordered]@{}
    # root\SecurityCenter2 does not exist on Server editions: products is then null with a reason.
    # productState bit fields as decoded in amidaware/community-scripts issue #268.
    $s.products = $null
    try {
        $list = New-Object System.Collections.ArrayList
        foreach ($p in (Get-CimInstance -Namespace 'root\SecurityCenter2' -ClassName AntiVirusProduct)) {
            [void]$list.Add([ordered]@{
                displayName = $p.displayName
                productState = $p.productState
                pathToSignedProductExe = $p.pathToSignedProductExe
                timestamp = $p.timestamp
                exe_exists = Test-ProductExe $p.pathToSignedProductExe
            })
        }
        $s.products = $list.ToArray()
    } catch { $s.products_error = [string]$_.Exception.Message }
    # MSFT_MpComputerStatus, the class behind Get-MpComputerStatus; AMRunningMode values as in
    # mondoohq/mql pull request #10381; a full wmic dump in glpi-project/glpi-agent issue #868.
    $s.defender = Get-Section 'defender' {
        $m = Get-CimInstance -Namespace 'root\Microsoft\Windows\Defender' -ClassName MSFT_MpComputerStatus |
            Select-Object -First 1
        if ($null -eq $m) { throw 'MSFT_MpComputerStatus returned no instance' }
        [ordered]@{
            AMRunningMode = $m.AMRunningMode
            AMServiceEnabled = $m.AMServiceEnabled
            AntivirusEnabled = $m.AntivirusEnabled
            RealTimeProtectionEnabled = $m.RealTimeProtectionEnabled
            AntivirusSignatureVersion = $m.AntivirusSignatureVersion
            AntivirusSignatureLastUpdated = ConvertTo-IsoUtc $m.AntivirusSignatureLastUpdated
            AntivirusSignatureAge = $m.AntivirusSignatureAge
            AMProductVersion = $m.AMProductVersion
        }
    }
    $s
}

$snap.firewall = Get-Section 'firewall' {
    $s = [ordered]@{}
    # INetFwPolicy2: FirewallEnabled(profile) for NET_FW_PROFILE2_DOMAIN 1, PRIVATE 2, PUBLIC 4;
    # CurrentProfileTypes is the bitmask of active profiles. Same calls in
    # ocalvo/MyPowerShell Firewall.ps1 (Get-FirewallConfig).
    $s.profiles = $null
    $s.current_profile_types = $null
    try {
        $fw = New-Object -ComObject HNetCfg.FwPolicy2
        $s.profiles = [ordered]@{
            Domain = [bool]$fw.FirewallEnabled(1)
            Private = [bool]$fw.FirewallEnabled(2)
            Public = [bool]$fw.FirewallEnabled(4)
        }
        $s.current_profile_types = [int]$fw.CurrentProfileTypes
    } catch { $s.profiles_error = [string]$_.Exception.Message }
    # Third-party firewalls register here; Windows Defender Firewall itself does not.
    $s.products = $null
    try {
        $list = New-Object System.Collections.ArrayList
        foreach ($p in (Get-CimInstance -Namespace 'root\SecurityCenter2' -ClassName FirewallProduct)) {
            [void]$list.Add([ordered]@{
                displayName = $p.displayName
                productState = $p.productState
                pathToSignedProductExe = $p.pathToSignedProductExe
                exe_exists = Test-ProductExe $p.pathToSignedProductExe
            })
        }
        $s.products = $list.ToArray()
    } catch { $s.products_error = [string]$_.Exception.Message }
    $s
}

$snap.screen_lock = Get-Section 'screen_lock' {
    $names = @('ScreenSaveActive', 'ScreenSaverIsSecure', 'ScreenSaveTimeOut', 'SCRNSAVE.EXE')
    [ordered]@{
        desktop = Get-RegValues $HKCU 'Control Panel\Desktop' $names
        policy_desktop = Get-RegValues $HKCU 'Software\Policies\Microsoft\Windows\Control Panel\Desktop' $names
        inactivity_timeout_secs = (Get-RegValues $HKLM 'SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' @('InactivityTimeoutSecs')).InactivityTimeoutSecs
    }
}

$snap.timings_ms = $Timings
$snap.language_mode = [string]$ExecutionContext.SessionState.LanguageMode

# Bytes straight to the stdout handle: no host re-encoding, no BOM, no trailing CRLF surprises.
$json = ConvertTo-Json -InputObject $snap -Depth 6 -Compress
$bytes = [System.Text.UTF8Encoding]::new($false).GetBytes($json)
$out = [Console]::OpenStandardOutput()
$out.Write($bytes, 0, $bytes.Length)
$out.Flush()
exit 0
