import { parsePhoneNumberFromString } from 'libphonenumber-js';
function bench(name, f){ for(let i=0;i<20000;i++) f(i); const t=performance.now(); for (let i=0;i<100000;i++) f(i); console.log(name, (performance.now()-t).toFixed(0)); }
bench('valid', i=>parsePhoneNumberFromString('+1 201 555 '+String(1000+i%9000),'US')?.isValid());
bench('possible', i=>parsePhoneNumberFromString('+1 201 555 '+String(1000+i%9000),'US')?.isPossible());
bench('possible noextract', i=>parsePhoneNumberFromString('+1 201 555 '+String(1000+i%9000),{defaultCountry:'US', extract:false})?.isPossible());
bench('valid noextract', i=>parsePhoneNumberFromString('+1 201 555 '+String(1000+i%9000),{defaultCountry:'US', extract:false})?.isValid());
bench('valid noextract national', i=>parsePhoneNumberFromString('(201) 555-'+String(1000+i%9000),{defaultCountry:'US', extract:false})?.isValid());
for (const s of ['+1 (555) 0100','abc','12','+1 201 555 0123 ext 5', '555-0100']) { const p=parsePhoneNumberFromString(s,{defaultCountry:'US', extract:false}); console.log(s, p?.number, p?.isPossible(), p?.isValid()); }
